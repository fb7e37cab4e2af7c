import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keysFor } from '../../src/keys.js';
import { TargetIndex } from '../../src/mapping/index.js';
import { contentChangedAt, FIELD_MANAGER, toRelease, toSource } from '../../src/sources/objects.js';

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
