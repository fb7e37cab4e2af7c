import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explain, formatReport } from '../../src/explain.js';
import { keysFor } from '../../src/keys.js';
import { toRelease, toSource } from '../../src/sources/objects.js';

const keys = keysFor();
const ctx = { keys, defaultNamespace: 'flux-system', autodiscovery: true, deferToFluxWatch: true, noCrossNamespaceRefs: false, inScope: () => true };
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
    assert.match(table.split('\n')[0]!, /^HELMRELEASE +SOURCE +VIA +DIGEST +RECORDED +STATUS$/);
    assert.match(table, /apps\/app +ConfigMap\/apps\/changed +annotation +sha256:[0-9a-f]{12}… +sha256:000000000000… +trigger pending/);
  });
  it('reports refused sources and filters by namespace and name', () => {
    const report = explain([source('bad', { [keys.targetNames]: 'Bad_Name' })], [release('app'), release('other')], ctx, { name: 'app' });
    assert.deepEqual(report.releases.map((r) => r.release), ['apps/app']);
    assert.match(report.refused[0]!.reason, /Bad_Name/);
    assert.match(formatReport(report), /refused ConfigMap\/apps\/bad/);
  });
});
