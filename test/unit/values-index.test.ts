import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValuesIndex } from '../../src/mapping/index.js';
import { toRelease } from '../../src/sources/objects.js';

const hr = (name: string, valuesFrom: unknown[]) =>
  toRelease({ metadata: { name, namespace: 'apps', resourceVersion: '1' }, spec: { valuesFrom } });

describe('valuesFrom index', () => {
  it('maps each source to the releases reading it and the keys they read (default values.yaml)', () => {
    const index = new ValuesIndex();
    index.set(hr('a', [{ kind: 'ConfigMap', name: 'shared' }, { kind: 'ConfigMap', name: 'shared', valuesKey: 'extra.yaml' }]));
    index.set(hr('b', [{ kind: 'ConfigMap', name: 'shared', valuesKey: 'b.yaml', targetPath: 'x.y' }, { kind: 'Secret', name: 'creds', optional: true }]));
    assert.deepEqual(index.consumersOf('ConfigMap/apps/shared'), [
      { ref: { namespace: 'apps', name: 'a' }, keys: ['extra.yaml', 'values.yaml'] },
      { ref: { namespace: 'apps', name: 'b' }, keys: ['b.yaml'] },
    ]);
    assert.deepEqual(index.consumersOf('Secret/apps/creds'), [{ ref: { namespace: 'apps', name: 'b' }, keys: ['values.yaml'] }]);
  });
  it('reports every source affected by an edit or a delete', () => {
    const index = new ValuesIndex();
    index.set(hr('a', [{ kind: 'ConfigMap', name: 'one' }]));
    assert.deepEqual(index.set(hr('a', [{ kind: 'ConfigMap', name: 'two' }])).sort(), ['ConfigMap/apps/one', 'ConfigMap/apps/two']);
    assert.deepEqual(index.consumersOf('ConfigMap/apps/one'), []);
    assert.deepEqual(index.delete({ namespace: 'apps', name: 'a' }), ['ConfigMap/apps/two']);
    assert.deepEqual(index.consumersOf('ConfigMap/apps/two'), []);
  });
  it('reports the same sources for an unchanged set, and still sees a changed value', async () => {
    const { ManyToMany } = await import('../../src/mapping/index.js');
    const m = new ManyToMany<string>();
    assert.deepEqual(m.set('s', new Map([['a', 'x'], ['b', 'y']])), ['a', 'b']);
    assert.deepEqual(m.set('s', new Map([['b', 'y'], ['a', 'x']])).sort(), ['a', 'b']);
    assert.deepEqual(m.ownersOf('a'), ['s']);
    m.set('s', new Map([['a', 'x'], ['b', 'z']]));
    assert.equal(m.get('s', 'b'), 'z');
    m.set('s', new Map([['a', 'x']]));
    assert.deepEqual(m.ownersOf('b'), []);
    assert.deepEqual(m.membersOf('s'), ['a']);
  });
  it('indexes only the kinds it is given (Secrets off)', () => {
    const index = new ValuesIndex(new Set(['ConfigMap']));
    assert.deepEqual(index.set(hr('a', [{ kind: 'ConfigMap', name: 'values' }, { kind: 'Secret', name: 'creds' }])), ['ConfigMap/apps/values']);
    assert.deepEqual(index.sourcesOf({ namespace: 'apps', name: 'a' }), ['ConfigMap/apps/values']);
    assert.deepEqual(index.consumersOf('Secret/apps/creds'), []);
  });
  it('ignores valuesFrom entries of other kinds or without a name', () => {
    const release = hr('a', [{ kind: 'Deployment', name: 'x' }, { kind: 'ConfigMap' }]);
    assert.deepEqual(release.valuesFrom, []);
  });
});
