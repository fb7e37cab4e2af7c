import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keysFor } from '../../src/keys.js';
import { TargetIndex, ValuesIndex } from '../../src/mapping/index.js';
import { type ReleaseObject, type SourceObject, toRelease, toSource } from '../../src/sources/objects.js';
import {
  contentChanged,
  marksMayChange,
  needsReindex,
  needsWake,
  releaseHandlers,
  type ReleaseWatchDeps,
  resumed,
  sourceHandlers,
  type SourceWatchDeps,
  sourcesToWake,
} from '../../src/watches.js';

const keys = keysFor();

const hr = (over: { name?: string; uid?: string; labels?: Record<string, string>; suspend?: boolean; paused?: boolean; valuesFrom?: unknown[] } = {}): ReleaseObject =>
  toRelease({
    metadata: {
      name: over.name ?? 'app',
      namespace: 'apps',
      uid: over.uid ?? 'u1',
      resourceVersion: '1',
      labels: over.labels ?? {},
      annotations: over.paused ? { [keys.trigger]: 'disabled' } : {},
    },
    spec: { suspend: over.suspend ?? false, valuesFrom: over.valuesFrom ?? [] },
  });

const cm = (name: string, over: { data?: Record<string, string>; annotations?: Record<string, string> } = {}): SourceObject =>
  toSource('ConfigMap', keys)({ metadata: { name, namespace: 'apps', resourceVersion: '1', annotations: over.annotations ?? {} }, data: over.data ?? { a: '1' } });

/** Records what the handlers queue, in order: trigger-queue adds with their urgency, and marks. */
function recorder() {
  const adds: [string, boolean][] = [];
  const marks: string[] = [];
  const changes: string[] = [];
  return {
    adds,
    marks,
    changes,
    queue: { add: (key: string, urgent = false) => void adds.push([key, urgent]) },
    mark: (key: string) => void marks.push(key),
    noteChange: (key: string) => void changes.push(key),
  };
}

function sources(over: Partial<SourceWatchDeps> = {}) {
  const rec = recorder();
  const deps: SourceWatchDeps = {
    index: new TargetIndex(),
    values: new ValuesIndex(),
    queue: rec.queue,
    mark: rec.mark,
    keys,
    defaultNamespace: 'apps',
    getSource: () => undefined,
    noteChange: rec.noteChange,
    synced: () => true,
    ...over,
  };
  return { ...rec, deps, on: sourceHandlers(deps) };
}

function releases(over: Partial<ReleaseWatchDeps> = {}) {
  const rec = recorder();
  const deps: ReleaseWatchDeps = { index: new TargetIndex(), values: new ValuesIndex(), queue: rec.queue, mark: rec.mark, ...over };
  return { ...rec, deps, on: releaseHandlers(deps) };
}

describe('watch helpers', () => {
  it('wake the sources naming a release, then those it reads', () => {
    const index = new TargetIndex();
    index.set('Secret/apps/names-it', [{ namespace: 'apps', name: 'app' }]);
    const release = hr({ valuesFrom: [{ kind: 'ConfigMap', name: 'values' }, { kind: 'Secret', name: 'creds' }] });
    const values = new ValuesIndex();
    values.set(release);
    assert.deepEqual(sourcesToWake(release, index, values), ['Secret/apps/names-it', 'ConfigMap/apps/values', 'Secret/apps/creds']);
    // Secrets off: a Secret it reads is not a source, so it is neither woken nor marked.
    const configMapsOnly = new ValuesIndex(new Set(['ConfigMap']));
    configMapsOnly.set(release);
    assert.deepEqual(sourcesToWake(release, index, configMapsOnly), ['Secret/apps/names-it', 'ConfigMap/apps/values']);
  });
  it('content changed: the digest, not the resourceVersion', () => {
    assert.equal(contentChanged(cm('a'), { ...cm('a'), resourceVersion: '2' }), false);
    assert.equal(contentChanged(cm('a'), cm('a', { data: { a: '2' } })), true);
  });
  it('reindex on valuesFrom or labels changes only', () => {
    const old = hr({ valuesFrom: [{ kind: 'ConfigMap', name: 'v' }] });
    assert.equal(needsReindex(old, hr({ valuesFrom: [{ kind: 'ConfigMap', name: 'v' }], suspend: true })), false);
    assert.equal(needsReindex(old, hr({ valuesFrom: [{ kind: 'ConfigMap', name: 'w' }] })), true);
    assert.equal(needsReindex(old, hr({ valuesFrom: [{ kind: 'ConfigMap', name: 'v', valuesKey: 'x.yaml' }] })), true);
    assert.equal(needsReindex(old, hr({ valuesFrom: [{ kind: 'ConfigMap', name: 'v' }], labels: { team: 'a' } })), true);
    // Compared field by field: equal copies are no change, a changed or dropped value or entry is.
    const refs = () => [{ kind: 'ConfigMap', name: 'v' }, { kind: 'Secret', name: 's', optional: true }];
    const labeled = hr({ valuesFrom: refs(), labels: { team: 'a', tier: 'web' } });
    assert.equal(needsReindex(labeled, hr({ valuesFrom: refs(), labels: { team: 'a', tier: 'web' } })), false);
    assert.equal(needsReindex(labeled, hr({ valuesFrom: refs(), labels: { team: 'b', tier: 'web' } })), true);
    assert.equal(needsReindex(labeled, hr({ valuesFrom: refs(), labels: { team: 'a' } })), true);
    assert.equal(needsReindex(labeled, hr({ valuesFrom: refs().slice(0, 1), labels: { team: 'a', tier: 'web' } })), true);
    assert.equal(needsReindex(labeled, hr({ valuesFrom: [refs()[0], { kind: 'Secret', name: 's' }], labels: { team: 'a', tier: 'web' } })), true);
  });
  it('wake on resume (suspend or pause), a new uid or new labels; not on a valuesFrom change alone', () => {
    const old = hr();
    assert.equal(resumed(hr({ suspend: true }), old), true);
    assert.equal(resumed(hr({ paused: true }), old), true);
    assert.equal(resumed(old, hr()), false);
    assert.equal(needsWake(hr({ suspend: true }), old), true);
    assert.equal(needsWake(old, hr({ uid: 'u2' })), true);
    assert.equal(needsWake(old, hr({ labels: { team: 'a' } })), true);
    assert.equal(needsWake(old, hr({ valuesFrom: [{ kind: 'ConfigMap', name: 'v' }] })), false);
  });
  it('marks may change for sources hrto marked or that releases read', () => {
    const values = new ValuesIndex();
    assert.equal(marksMayChange(cm('plain'), keys, values), false);
    assert.equal(marksMayChange(cm('marked', { annotations: { [keys.autodiscovered]: '{}' } }), keys, values), true);
    values.set(hr({ valuesFrom: [{ kind: 'ConfigMap', name: 'read' }] }));
    assert.equal(marksMayChange(cm('read'), keys, values), true);
  });
});

describe('source handlers', () => {
  it('a source created after the caches synced is urgent; before, it is part of the first-sight wave', () => {
    let synced = false;
    const w = sources({ synced: () => synced });
    w.on.add!(cm('early'));
    synced = true;
    w.on.add!(cm('late'));
    assert.deepEqual(w.adds, [
      ['ConfigMap/apps/early', false],
      ['ConfigMap/apps/late', true],
    ]);
    assert.deepEqual(w.changes, ['ConfigMap/apps/early', 'ConfigMap/apps/late']);
  });
  it('indexes the targets a source names, and drops them when the annotation is invalid', () => {
    const w = sources();
    w.on.add!(cm('s', { annotations: { [keys.targetNames]: 'app' } }));
    assert.deepEqual(w.deps.index.sourcesOf({ namespace: 'apps', name: 'app' }), ['ConfigMap/apps/s']);
    w.on.update!(cm('s'), cm('s', { annotations: { [keys.targetNames]: 'app', [keys.targetNamespace]: 'Not_A_Namespace!' } }));
    assert.deepEqual(w.deps.index.sourcesOf({ namespace: 'apps', name: 'app' }), []);
  });
  it('an update is urgent and noted only when the content changed', () => {
    const w = sources();
    w.on.update!(cm('s'), { ...cm('s'), resourceVersion: '2' });
    w.on.update!(cm('s'), cm('s', { data: { a: '2' } }));
    assert.deepEqual(w.adds, [
      ['ConfigMap/apps/s', false],
      ['ConfigMap/apps/s', true],
    ]);
    assert.deepEqual(w.changes, ['ConfigMap/apps/s']);
  });
  it('resync and delete queue plainly; delete keeps the targets while another informer still holds the source', () => {
    const held = cm('s', { annotations: { [keys.targetNames]: 'app' } });
    let cached: SourceObject | undefined = held;
    const w = sources({ getSource: () => cached });
    w.on.add!(held);
    w.adds.length = 0;
    w.on.resync!(held);
    w.on.delete!(held);
    assert.deepEqual(w.deps.index.sourcesOf({ namespace: 'apps', name: 'app' }), ['ConfigMap/apps/s']);
    cached = undefined;
    w.on.delete!(held);
    assert.deepEqual(w.deps.index.sourcesOf({ namespace: 'apps', name: 'app' }), []);
    assert.deepEqual(w.adds, [
      ['ConfigMap/apps/s', false],
      ['ConfigMap/apps/s', false],
      ['ConfigMap/apps/s', false],
    ]);
  });
  it('checks marks on every event of a discovered source, and of no other', () => {
    const w = sources();
    const marked = cm('m', { annotations: { [keys.autodiscovered]: '{}' } });
    w.on.add!(marked);
    w.on.update!(marked, marked);
    w.on.resync!(marked);
    w.on.delete!(marked);
    const plain = cm('p');
    w.on.add!(plain);
    w.on.update!(plain, plain);
    w.on.resync!(plain);
    w.on.delete!(plain);
    assert.deepEqual(w.marks, ['ConfigMap/apps/m', 'ConfigMap/apps/m', 'ConfigMap/apps/m', 'ConfigMap/apps/m']);
  });
});

describe('release handlers', () => {
  const reads = (name: string) => [{ kind: 'ConfigMap', name }];

  it('an added release is indexed (marks and queues what it reads) and wakes its sources', () => {
    const index = new TargetIndex();
    index.set('Secret/apps/names-it', [{ namespace: 'apps', name: 'app' }]);
    const w = releases({ index });
    w.on.add!(hr({ valuesFrom: reads('v') }));
    assert.deepEqual(w.deps.values.consumersOf('ConfigMap/apps/v'), [{ ref: { namespace: 'apps', name: 'app' }, keys: ['values.yaml'] }]);
    assert.deepEqual(w.marks, ['ConfigMap/apps/v']);
    assert.deepEqual(w.adds, [
      ['ConfigMap/apps/v', false],
      ['Secret/apps/names-it', false],
      ['ConfigMap/apps/v', false],
    ]);
  });
  it('a valuesFrom change reindexes before and after without waking', () => {
    const w = releases();
    const old = hr({ valuesFrom: reads('one') });
    w.on.add!(old);
    w.adds.length = 0;
    w.marks.length = 0;
    w.on.update!(old, hr({ valuesFrom: reads('two') }));
    assert.deepEqual(w.marks.sort(), ['ConfigMap/apps/one', 'ConfigMap/apps/two']);
    assert.deepEqual(w.adds.map(([k]) => k).sort(), ['ConfigMap/apps/one', 'ConfigMap/apps/two']);
    assert.deepEqual(w.deps.values.consumersOf('ConfigMap/apps/one'), []);
  });
  it('a label change reindexes and wakes; a resume wakes without reindexing; a status change alone does nothing', () => {
    const w = releases();
    const old = hr({ valuesFrom: reads('v') });
    w.on.update!(old, hr({ valuesFrom: reads('v'), labels: { team: 'a' } }));
    assert.deepEqual(w.marks, ['ConfigMap/apps/v']);
    assert.deepEqual(w.adds, [
      ['ConfigMap/apps/v', false],
      ['ConfigMap/apps/v', false],
    ]);
    w.adds.length = 0;
    w.marks.length = 0;
    w.on.update!(hr({ valuesFrom: reads('v'), suspend: true }), old);
    assert.deepEqual(w.adds, [['ConfigMap/apps/v', false]]);
    assert.deepEqual(w.marks, []);
    w.adds.length = 0;
    w.on.update!(old, { ...old, resourceVersion: '2', stalled: true });
    assert.deepEqual(w.adds, []);
  });
  it('releaseStatusChanged wakes the sources when it says so', () => {
    const seen: [ReleaseObject, ReleaseObject][] = [];
    const w = releases({
      releaseStatusChanged: (old, release) => {
        seen.push([old, release]);
        return !old.stalled && release.stalled;
      },
    });
    const old = hr({ valuesFrom: reads('v') });
    w.deps.values.set(old); // as its add did
    const stalled = { ...old, resourceVersion: '2', stalled: true };
    w.on.update!(old, stalled);
    w.on.update!(stalled, { ...stalled, resourceVersion: '3' });
    assert.deepEqual(w.adds, [['ConfigMap/apps/v', false]]);
    assert.equal(seen.length, 2);
  });
  it('resync marks what a release reads without queueing; delete unindexes, marks and queues it', () => {
    const w = releases();
    const release = hr({ valuesFrom: reads('v') });
    w.on.add!(release);
    w.adds.length = 0;
    w.marks.length = 0;
    w.on.resync!(release);
    assert.deepEqual(w.marks, ['ConfigMap/apps/v']);
    assert.deepEqual(w.adds, []);
    w.on.delete!(release);
    assert.deepEqual(w.marks, ['ConfigMap/apps/v', 'ConfigMap/apps/v']);
    assert.deepEqual(w.adds, [['ConfigMap/apps/v', false]]);
    assert.deepEqual(w.deps.values.consumersOf('ConfigMap/apps/v'), []);
  });
});
