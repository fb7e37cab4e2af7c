import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keysFor } from '../../src/keys.js';
import { TargetIndex } from '../../src/mapping/index.js';
import { CONDITION_MESSAGE_MAX, contentChangedAt, FIELD_MANAGER, toRelease, toSource } from '../../src/sources/objects.js';

describe('cached objects', () => {
  it('keep a digest and only hrto-domain annotations, never the content', () => {
    const src = toSource('Secret', keysFor())({
      metadata: {
        name: 's',
        namespace: 'ns',
        resourceVersion: '5',
        annotations: { 'uburro.github.com/helmreleases-name': 'app', 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"c2VjcmV0"}}' },
      },
      data: { password: 'c2VjcmV0' },
    });
    assert.equal(src.key, 'Secret/ns/s');
    assert.deepEqual(src.annotations, { 'uburro.github.com/helmreleases-name': 'app' });
    assert.match(src.digest, /^sha256:/);
    assert.ok(!JSON.stringify(src).includes('c2VjcmV0'));
  });
  it('date content by the newest writer of data other than hrto', () => {
    const meta = {
      creationTimestamp: '2026-01-01T00:00:00Z',
      managedFields: [
        { manager: 'kubectl', time: '2026-02-01T00:00:00Z', fieldsV1: { 'f:data': {} } },
        { manager: 'helm', time: '2026-03-01T00:00:00Z', fieldsV1: { 'f:metadata': {} } },
        { manager: FIELD_MANAGER, time: '2026-04-01T00:00:00Z', fieldsV1: { 'f:data': {} } },
      ],
    };
    assert.equal(contentChangedAt(meta), '2026-02-01T00:00:00Z');
    assert.equal(contentChangedAt({ creationTimestamp: '2026-01-01T00:00:00Z' }), '2026-01-01T00:00:00Z');
  });
  it('read a HelmRelease: suspend and the latest history entry', () => {
    const r = toRelease({
      metadata: { name: 'app', namespace: 'ns', uid: 'u', resourceVersion: '1' },
      spec: { suspend: true },
      status: { history: [{ lastDeployed: '2026-01-02T00:00:00Z', status: 'failed' }, { lastDeployed: '2025-01-01T00:00:00Z' }] },
    });
    assert.equal(r.suspended, true);
    assert.deepEqual(r.lastRelease, { deployedAt: '2026-01-02T00:00:00Z', status: 'failed' });
    assert.equal(toRelease({ metadata: { name: 'x', namespace: 'ns' } }).lastRelease, undefined);
  });
  it('read a HelmRelease: the facts of the health reading, as scalars', () => {
    const keys = keysFor('example.com');
    const long = `Helm upgrade failed for release ns/app with chart app@1.0.0:\n\n  ${'x'.repeat(400)}`;
    const raw = {
      metadata: {
        name: 'app',
        namespace: 'ns',
        generation: 4,
        annotations: {
          'example.com/wave': '2',
          'example.com/trigger-windows': '[{"cron":"0 8 * * 1-5","window":"8h"}]',
          'example.com/rollout-now': 'sha256:abcdefabcdef',
          'example.com/rollout': '{"at":"2026-03-01T10:00:00Z","v":3,"f":0,"force":true,"src":{}}',
          'uburro.github.com/wave': 'other domain',
        },
      },
      spec: { test: { enable: true } },
      status: {
        lastHandledReconcileAt: '2026-03-01T10:00:00Z',
        lastAttemptedConfigDigest: 'sha256:22',
        failures: 2,
        // Out of order on purpose: the newest is the highest version, wherever it is.
        history: [
          { version: 5, status: 'deployed', action: 'rollback', configDigest: 'sha256:11', chartName: 'app' },
          { version: 6, status: 'deployed', action: 'upgrade', configDigest: 'sha256:22', lastDeployed: '2026-03-01T10:00:05Z', testHooks: { t: { phase: 'Succeeded' } } },
          { version: 4, status: 'failed', action: 'upgrade', configDigest: 'sha256:22' },
        ],
        conditions: [
          { type: 'Ready', status: 'False', reason: 'UpgradeFailed', message: long, observedGeneration: 4, lastTransitionTime: '2026-03-01T10:00:01Z' },
          { type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry', message: 'retrying', observedGeneration: 3 },
          { type: 'Stalled', status: 'False', reason: 'x', message: '' },
          { type: 'TestSuccess', status: 'True', reason: 'TestSucceeded', message: 'ok', observedGeneration: 4 },
          { type: 'Released', status: 'False', reason: 'UpgradeFailed', message: 'short', observedGeneration: 4 },
          { type: 'Remediated', status: 'True', reason: 'RollbackSucceeded', message: 'not kept' },
        ],
      },
    };
    const r = toRelease(raw, keys);
    assert.equal(r.generation, 4);
    assert.equal(r.wave, '2');
    assert.equal(r.triggerWindows, '[{"cron":"0 8 * * 1-5","window":"8h"}]');
    assert.equal(r.rolloutNow, 'sha256:abcdefabcdef');
    assert.equal(r.rolloutRecord, '{"at":"2026-03-01T10:00:00Z","v":3,"f":0,"force":true,"src":{}}');
    assert.equal(r.lastHandledReconcileAt, '2026-03-01T10:00:00Z');
    assert.equal(r.lastAttemptedConfigDigest, 'sha256:22');
    assert.equal(r.failures, 2);
    assert.equal(r.testEnabled, true);
    assert.deepEqual(r.newest, { version: 6, status: 'deployed', action: 'upgrade', configDigest: 'sha256:22', deployedAt: Date.parse('2026-03-01T10:00:05Z') });
    assert.equal(r.badVersion, 5);
    assert.deepEqual(r.conditions?.reconciling, { status: 'True', reason: 'ProgressingWithRetry', message: 'retrying', observedGeneration: 3, since: undefined });
    assert.deepEqual(r.conditions?.stalled, { status: 'False', reason: 'x', message: '', observedGeneration: 0, since: undefined });
    assert.deepEqual(r.conditions?.testSuccess, { status: 'True', reason: 'TestSucceeded', message: 'ok', observedGeneration: 4, since: undefined });
    assert.deepEqual(r.conditions?.released, { status: 'False', reason: 'UpgradeFailed', message: 'short', observedGeneration: 4, since: undefined });
    const ready = r.conditions?.ready;
    assert.equal(ready?.status, 'False');
    assert.equal(ready?.reason, 'UpgradeFailed');
    assert.equal(ready?.observedGeneration, 4);
    assert.equal(ready?.since, Date.parse('2026-03-01T10:00:01Z'), 'lastTransitionTime: a bake reads when it turned');
    // Short, on one line.
    assert.equal(ready?.message.length, CONDITION_MESSAGE_MAX);
    assert.ok(ready?.message.startsWith('Helm upgrade failed for release ns/app with chart app@1.0.0: xxx'), ready?.message);
    assert.ok(ready?.message.endsWith('…'));
    // Kept as they were: the history entry in first place and the Stalled flag.
    assert.deepEqual(r.lastRelease, undefined);
    assert.equal(r.stalled, false);
    // Nothing else of the status is held: no history, no hooks, no Remediated, no other domain's keys.
    const text = JSON.stringify(r);
    for (const absent of ['testHooks', 'chartName', 'Remediated', 'not kept', 'other domain', 'x'.repeat(200)]) assert.ok(!text.includes(absent), absent);
  });
  it('read a HelmRelease: the health facts of an object without status', () => {
    const r = toRelease({ metadata: { name: 'x', namespace: 'ns' } }, keysFor(), true);
    assert.equal(r.generation, 0);
    assert.equal(r.wave, undefined);
    assert.equal(r.triggerWindows, undefined);
    assert.equal(r.rolloutNow, undefined);
    assert.equal(r.rolloutRecord, undefined);
    assert.equal(r.lastHandledReconcileAt, undefined);
    assert.equal(r.lastAttemptedConfigDigest, undefined);
    assert.equal(r.failures, 0);
    assert.equal(r.testEnabled, false);
    assert.equal(r.newest, undefined);
    assert.equal(r.badVersion, 0);
    assert.deepEqual(r.conditions, { ready: undefined, reconciling: undefined, stalled: undefined, testSuccess: undefined, released: undefined });
    // The default domain's annotations.
    assert.equal(toRelease({ metadata: { name: 'x', namespace: 'ns', annotations: { 'uburro.github.com/wave': '0' } } }).wave, '0');
  });
  it('read a HelmRelease: only the baseline a trigger or a hold notes is kept for a release that is neither waved nor tracked', () => {
    const status = { failures: 3, lastHandledReconcileAt: 'x', lastAttemptedConfigDigest: 'sha256:aa', history: [{ version: 4, status: 'deployed', action: 'upgrade' }], conditions: [{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', message: 'm' }] };
    const plain = toRelease({ metadata: { name: 'x', namespace: 'ns', generation: 2 }, status });
    for (const field of ['lastHandledReconcileAt', 'conditions', 'testEnabled'] as const) assert.equal(plain[field], undefined, field);
    // A source's plan may hold or trigger any release: what its mark and record note before the write.
    assert.deepEqual([plain.generation, plain.failures, plain.version, plain.lastAttemptedConfigDigest], [2, 3, 4, 'sha256:aa']);
    assert.equal(plain.newest, undefined);
    const waved = toRelease({ metadata: { name: 'x', namespace: 'ns', generation: 2, annotations: { 'uburro.github.com/wave': '1' } }, status });
    assert.equal(waved.failures, 3);
    assert.equal(toRelease({ metadata: { name: 'x', namespace: 'ns' }, status }, keysFor(), true).failures, 3, 'with --max-upgrades-in-flight every release is tracked');
  });
});

describe('TargetIndex', () => {
  it('maps targets back to the sources naming them and forgets replaced targets', () => {
    const index = new TargetIndex();
    index.set('s1', [{ namespace: 'ns', name: 'a' }, { namespace: 'ns', name: 'b' }]);
    index.set('s2', [{ namespace: 'ns', name: 'a' }]);
    assert.deepEqual(index.sourcesOf({ namespace: 'ns', name: 'a' }).sort(), ['s1', 's2']);
    index.set('s1', [{ namespace: 'ns', name: 'c' }]);
    assert.deepEqual(index.sourcesOf({ namespace: 'ns', name: 'b' }), []);
    index.delete('s2');
    assert.deepEqual(index.sourcesOf({ namespace: 'ns', name: 'a' }), []);
    assert.equal(index.size, 1);
  });
});
