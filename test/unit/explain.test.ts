import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decisionContext } from '../../src/assess.js';
import { encodeKeyHashes } from '../../src/changes.js';
import { resolveConfig } from '../../src/config.js';
import { keyDigests } from '../../src/digest.js';
import { explain, formatReport } from '../../src/explain.js';
import { keysFor } from '../../src/keys.js';
import { toRelease, toSource } from '../../src/sources/objects.js';

const keys = keysFor();
const NOW = Date.parse('2026-11-30T12:00:00Z');
const ctx = { ...decisionContext(resolveConfig({}), keys), now: () => NOW };
const source = (name: string, annotations: Record<string, string>, data: Record<string, string> = { 'values.yaml': 'a: 1\n' }) =>
  toSource('ConfigMap', keys)({ metadata: { name, namespace: 'apps', resourceVersion: '1', annotations, creationTimestamp: '2026-01-01T00:00:00Z' }, data });
const release = (name: string, spec: Record<string, unknown> = {}) =>
  toRelease({ metadata: { name, namespace: 'apps', resourceVersion: '1' }, spec, status: { history: [{ status: 'deployed', lastDeployed: '2025-01-01T00:00:00Z' }] } });

describe('explain', () => {
  it('lists each release with the sources feeding it and whether a trigger is pending', () => {
    const current = source('current', { [keys.targetNames]: 'app', [keys.targetNamespace]: 'apps' });
    const recorded = { ...current, annotations: { ...current.annotations, [keys.configDigest]: current.digest } };
    const changed = source('changed', { [keys.targetNames]: 'app', [keys.targetNamespace]: 'apps', [keys.configDigest]: `sha256:${'0'.repeat(64)}` });
    const report = explain([recorded, changed], [release('app', { valuesFrom: [{ kind: 'Secret', name: 'creds' }] })], ctx);
    const rows = report.releases[0]!.sources;
    assert.deepEqual(
      rows.map((r) => [r.source, r.state, r.pending]),
      [
        ['ConfigMap/apps/changed', 'trigger', true],
        ['ConfigMap/apps/current', 'current', false],
        ['Secret/apps/creds', 'unwatched', false],
      ],
    );
    const table = formatReport(report);
    assert.match(table.split('\n')[0]!, /^HELMRELEASE +WAVE +SOURCE +VIA +DIGEST +RECORDED +STATUS$/);
    assert.match(table, /apps\/app +- +ConfigMap\/apps\/changed +annotation +sha256:[0-9a-f]{12}… +sha256:000000000000… +trigger pending/);
  });
  it('with Secrets off, says a Secret reference is ignored, and refuses targets beyond --watch-namespaces', () => {
    const scoped = { ...decisionContext(resolveConfig({ watchSecrets: 'false', watchNamespaces: 'apps' }), keys), now: () => NOW };
    const report = explain(
      [source('remote', { [keys.targetNames]: 'app', [keys.targetNamespace]: 'elsewhere' })],
      [release('app', { valuesFrom: [{ kind: 'Secret', name: 'creds' }, { kind: 'ConfigMap', name: 'unlabeled' }] })],
      scoped,
    );
    assert.deepEqual(
      report.releases[0]!.sources.map((r) => [r.source, r.state, r.reason]),
      [
        ['ConfigMap/apps/unlabeled', 'unwatched', "not watched: missing, not labeled yet, or outside this instance's scope"],
        ['Secret/apps/creds', 'unwatched', 'ignored: Secrets are off (--watch-secrets=false)'],
      ],
    );
    assert.match(report.refused[0]!.reason, /namespace elsewhere, outside --watch-namespaces \(apps\)/);
  });
  it('reports refused sources and filters by namespace and name', () => {
    const report = explain([source('bad', { [keys.targetNames]: 'Bad_Name' })], [release('app'), release('other')], ctx, { name: 'app' });
    assert.deepEqual(report.releases.map((r) => r.release), ['apps/app']);
    assert.match(report.refused[0]!.reason, /Bad_Name/);
    assert.match(formatReport(report), /refused ConfigMap\/apps\/bad/);
  });
  it('previews a rollout: changed keys, waves, a held release until when, a halted one and why', () => {
    const before = { 'values.yaml': 'a: 1\n', gone: 'x', same: 'y' };
    const after = { 'values.yaml': 'a: 2\n', added: 'z', same: 'y' };
    const src = source('shared', { [keys.configDigest]: `sha256:${'0'.repeat(64)}`, [keys.keyHashes]: encodeKeyHashes(keyDigests({ data: before })) }, after);
    const reader = (name: string, annotations: Record<string, string>, status: Record<string, unknown> = {}) =>
      toRelease({
        metadata: { name, namespace: 'apps', resourceVersion: '1', generation: 1, annotations },
        spec: { valuesFrom: [{ kind: 'ConfigMap', name: 'shared' }] },
        status: { history: [{ status: 'deployed', lastDeployed: '2025-01-01T00:00:00Z', version: 1 }], ...status },
      });
    // The office-hours window of the third release opens at 08:00 Berlin time on Tuesday 1 December.
    const officeHours = JSON.stringify([{ cron: '0 8 * * 1-5', timeZone: 'Europe/Berlin', window: '9h' }]);
    const at = '2026-11-30T11:59:00.000000000Z';
    const failedCanary = reader(
      'canary',
      { [keys.wave]: '1', 'reconcile.fluxcd.io/requestedAt': at, [keys.rolloutRecord]: JSON.stringify({ at, v: 1, f: 0, force: true, src: { [src.key]: src.digest.slice(0, 19) } }) },
      { lastHandledReconcileAt: at, failures: 1, conditions: [{ type: 'Ready', status: 'False', reason: 'UpgradeFailed', message: 'values schema', observedGeneration: 1 }] },
    );
    const report = explain([src], [failedCanary, reader('main', { [keys.wave]: '2' }), reader('night', { [keys.triggerWindows]: officeHours.replace('"0 8', '"0 20').replace('9h', '2h') })], ctx);
    const row = (name: string) => report.releases.find((r) => r.release === `apps/${name}`)!.sources[0]!;
    assert.equal(row('canary').state, 'done');
    assert.equal(row('main').state, 'halted');
    assert.equal(row('main').wave, 2);
    assert.match(row('main').reason, /halted: wave 1's apps\/canary failed \(UpgradeFailed: values schema\)/);
    assert.equal(row('main').changedKeys, 'changed values.yaml; added added; removed gone');
    assert.equal(row('night').state, 'held');
    assert.match(row('night').reason, /^held until 2026-11-30T19:00:00.000Z/);
    const table = formatReport(report);
    assert.match(table, /apps\/main +2 +ConfigMap\/apps\/shared .*halted.*\(keys: changed values.yaml; added added; removed gone\)/);
    // The canary failed and the rollout is halted on it: its row says so, not that all is well.
    assert.equal(row('canary').reason, `failed (UpgradeFailed: values schema) after being triggered for this content at ${at}; the rollout is halted on it`);

    // What the controller knows of holds and past triggers, read from the objects alone.
    const mark = JSON.stringify({ by: 'helmrelease-trigger-operator', reason: 'wave', since: '2026-11-30T11:59:01.000Z', v: 1, src: { [src.key]: src.digest.slice(0, 19) } });
    const heldMain = toRelease({
      metadata: { name: 'main', namespace: 'apps', resourceVersion: '2', generation: 2, annotations: { [keys.wave]: '2', [keys.suspendedBy]: mark } },
      spec: { suspend: true, valuesFrom: [{ kind: 'ConfigMap', name: 'shared' }] },
      status: { history: [{ status: 'deployed', lastDeployed: '2025-01-01T00:00:00Z', version: 1 }] },
    });
    const sibling = toRelease({
      metadata: { name: 'sibling', namespace: 'apps', resourceVersion: '1', annotations: { [keys.rolloutRecord]: JSON.stringify({ at, v: 1, f: 0, force: true, src: { [src.key]: src.digest.slice(0, 19) } }) } },
      spec: { valuesFrom: [{ kind: 'ConfigMap', name: 'shared' }] },
      status: { history: [{ status: 'deployed', lastDeployed: '2025-01-01T00:00:00Z', version: 2 }] },
    });
    const held = explain([src], [failedCanary, heldMain, sibling], ctx);
    const heldRelease = held.releases.find((r) => r.release === 'apps/main')!;
    assert.equal(heldRelease.suspended, false, 'hrto\'s own suspension is a hold, not a person\'s');
    assert.deepEqual(heldRelease.hold, { state: 'held', reason: 'wave', since: '2026-11-30T11:59:01.000Z', by: undefined, sources: [src.key] });
    assert.match(formatReport(held), /apps\/main \(held by hrto since 2026-11-30T11:59:01.000Z: wave\) +2 /);
    const siblingRow = held.releases.find((r) => r.release === 'apps/sibling')!.sources[0]!;
    assert.equal(siblingRow.state, 'done', 'triggered for this content by an earlier process: not pending again');
    assert.equal(siblingRow.reason, `triggered for this content at ${at}`);
  });

  it('names each release\'s cluster in a hub (its spec.kubeConfig Secret, or local), and adds no column elsewhere', () => {
    const src = source('shared', { [keys.configDigest]: `sha256:${'0'.repeat(64)}` });
    const reader = (name: string, spec: Record<string, unknown> = {}) =>
      toRelease({ metadata: { name, namespace: 'apps', resourceVersion: '1' }, spec: { valuesFrom: [{ kind: 'ConfigMap', name: 'shared' }], ...spec }, status: { history: [{ status: 'deployed', lastDeployed: '2025-01-01T00:00:00Z' }] } });
    const hub = explain([src], [reader('eu-1', { kubeConfig: { secretRef: { name: 'eu-1-kubeconfig' } } }), reader('hub-itself')], ctx);
    assert.deepEqual(hub.releases.map((r) => [r.release, r.cluster]), [['apps/eu-1', 'eu-1-kubeconfig'], ['apps/hub-itself', 'local']]);
    const table = formatReport(hub);
    assert.match(table.split('\n')[0]!, /^HELMRELEASE +CLUSTER +WAVE +SOURCE/);
    assert.match(table, /apps\/eu-1 +eu-1-kubeconfig +- +ConfigMap\/apps\/shared/);
    assert.match(table, /apps\/hub-itself +local +- /);
    assert.match(formatReport(explain([src], [reader('hub-itself')], ctx)).split('\n')[0]!, /^HELMRELEASE +WAVE +SOURCE/, 'one cluster: no column');
  });

  it('says a waved release cannot be held for a source helm-controller watches itself', () => {
    const watched = toSource('ConfigMap', keys)({
      metadata: { name: 'shared', namespace: 'apps', resourceVersion: '1', labels: { 'reconcile.fluxcd.io/watch': 'Enabled' }, annotations: { [keys.configDigest]: `sha256:${'0'.repeat(64)}` } },
      data: { 'values.yaml': 'a: 2\n' },
    });
    const waved = toRelease({ metadata: { name: 'main', namespace: 'apps', resourceVersion: '1', annotations: { [keys.wave]: '2' } }, spec: { valuesFrom: [{ kind: 'ConfigMap', name: 'shared' }] } });
    const row = explain([watched], [waved], ctx).releases[0]!.sources[0]!;
    assert.match(row.reason, /its waves and windows cannot hold this source/);
  });
});

describe('explain and the minimum interval', () => {
  it('says until when a pending trigger waits for --min-trigger-interval after the release\'s last trigger', () => {
    const changed = source('changed', { [keys.targetNames]: 'app', [keys.targetNamespace]: 'apps', [keys.configDigest]: `sha256:${'0'.repeat(64)}` });
    const recent = toRelease({
      metadata: { name: 'app', namespace: 'apps', resourceVersion: '1', annotations: { 'reconcile.fluxcd.io/requestedAt': new Date(NOW - 10_000).toISOString() } },
      status: { history: [{ status: 'deployed', lastDeployed: '2025-01-01T00:00:00Z' }] },
    });
    const row = (interval: number) => explain([changed], [recent], ctx, {}, interval).releases[0]!.sources[0]!.reason;
    assert.equal(row(30_000), `trigger pending: the content changed since the recorded digest; waits for --min-trigger-interval (30s after its last trigger) until ${new Date(NOW + 20_000).toISOString()}`);
    assert.equal(row(5_000), 'trigger pending: the content changed since the recorded digest', 'the interval has passed');
  });
});
