import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentNewerThanRelease, decide, type DecideInput } from '../../src/decide.js';
import type { ReleaseObject } from '../../src/sources/objects.js';
import { releaseObject } from './releases.js';

const OURS = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;

const release = (overrides: Partial<ReleaseObject> = {}): ReleaseObject => releaseObject('app', overrides);

function input(overrides: Partial<DecideInput> = {}, target: Partial<DecideInput['targets'][number]> = {}): DecideInput {
  return {
    digest: NEW,
    recorded: OURS,
    keyDigests: {},
    recordedKeyDigests: {},
    contentChangedAt: '2026-06-01T00:00:00Z',
    targets: [{ ref: { namespace: 'ns', name: 'app' }, release: release(), triggeredDigest: undefined, ...target }],
    ...overrides,
  };
}

const actions = (i: DecideInput) => decide(i).targets.map((t) => t.action);

describe('decide', () => {
  it('does nothing when the recorded digest equals the content', () => {
    const plan = decide(input({ recorded: NEW }));
    assert.equal(plan.upToDate, true);
    assert.deepEqual(plan.targets.map((t) => t.action), ['current']);
    assert.equal(plan.record, false);
  });
  it('back at the recorded content (a revert), triggers again only the releases a trigger gave another content', () => {
    const carriedNew = { ref: { namespace: 'ns', name: 'canary' }, release: releaseObject('canary'), triggeredDigest: undefined, carried: NEW.slice(0, 19) };
    const carriedOurs = { ref: { namespace: 'ns', name: 'held' }, release: releaseObject('held'), triggeredDigest: undefined, carried: OURS.slice(0, 19) };
    const never = { ref: { namespace: 'ns', name: 'adopted' }, release: releaseObject('adopted'), triggeredDigest: undefined };
    const plan = decide(input({ digest: OURS, recorded: OURS, targets: [carriedNew, carriedOurs, never] }));
    assert.equal(plan.upToDate, false);
    assert.deepEqual(plan.targets.map((t) => t.action), ['trigger', 'current', 'current']);
    assert.equal(plan.record, false, 'the digest is recorded already');
    const repaired = decide(input({ digest: OURS, recorded: OURS, targets: [{ ...carriedNew, carried: OURS.slice(0, 19) }, carriedOurs, never] }));
    assert.equal(repaired.upToDate, true, 'once the repair carried it, nothing is left to do');
  });
  it('triggers on a changed digest, whatever the release status, and records once the trigger landed', () => {
    for (const status of ['deployed', 'failed', 'superseded']) {
      const plan = decide(input({}, { release: release({ lastRelease: { deployedAt: '2027-01-01T00:00:00Z', status } }) }));
      assert.deepEqual(plan.targets.map((t) => t.action), ['trigger']);
      assert.equal(plan.record, false, 'not before the trigger landed');
      assert.equal(plan.firstSight, false);
    }
    assert.equal(decide(input({}, { triggeredDigest: NEW })).record, true);
  });
  it('releases outside the HelmRelease selector are neither triggered nor waited for', () => {
    const plan = decide(input({}, { inScope: false }));
    assert.deepEqual(plan.targets.map((t) => t.action), ['outOfScope']);
    assert.equal(plan.record, true);
  });
  it('on first sight adopts releases newer than the content and triggers older ones', () => {
    for (const recorded of [undefined, '1a2b3c4d', 'sha256:short']) {
      assert.deepEqual(actions(input({ recorded, contentChangedAt: '2025-01-01T00:00:00Z' })), ['adopt'], String(recorded));
      assert.deepEqual(actions(input({ recorded, contentChangedAt: '2026-06-01T00:00:00Z' })), ['trigger'], String(recorded));
    }
    assert.deepEqual(actions(input({ recorded: undefined }, { release: release({ lastRelease: undefined }) })), ['adopt']);
  });
  it('missing and suspended targets block the record; done ones do not trigger again', () => {
    const plan = decide({
      ...input(),
      targets: [
        { ref: { namespace: 'ns', name: 'gone' }, release: undefined, triggeredDigest: undefined },
        { ref: { namespace: 'ns', name: 'paused' }, release: release({ suspended: true }), triggeredDigest: undefined },
        { ref: { namespace: 'ns', name: 'app' }, release: release(), triggeredDigest: NEW },
        { ref: { namespace: 'ns', name: 'old' }, release: release(), triggeredDigest: OURS },
      ],
    });
    assert.deepEqual(plan.targets.map((t) => t.action), ['missing', 'suspended', 'done', 'trigger']);
    assert.equal(plan.record, false);
    assert.equal(decide(input({}, { triggeredDigest: NEW })).record, true);
  });
  it('treats unknown or equal times as newer: a spurious upgrade is recoverable, a lost change is not', () => {
    const r = release();
    assert.equal(contentNewerThanRelease(undefined, r), true);
    assert.equal(contentNewerThanRelease('garbage', r), true);
    assert.equal(contentNewerThanRelease('2026-01-01T00:00:00Z', r), true);
    assert.equal(contentNewerThanRelease('2025-12-31T23:59:59Z', r), false);
    assert.equal(contentNewerThanRelease('2026-06-01T00:00:00Z', release({ lastRelease: undefined })), false);
  });
  describe('values-aware (valuesFrom keys)', () => {
    const A1 = `sha256:${'1'.repeat(64)}`;
    const A2 = `sha256:${'2'.repeat(64)}`;
    const B1 = `sha256:${'3'.repeat(64)}`;
    const B2 = `sha256:${'4'.repeat(64)}`;
    const keyed = (keyDigests: Record<string, string>, recordedKeyDigests: Record<string, string>, valuesKeys?: string[]) =>
      input({ keyDigests, recordedKeyDigests }, { valuesKeys });

    it('a release reading only unchanged keys is not triggered, but the digest is recorded', () => {
      const plan = decide(keyed({ 'a.yaml': A1, 'b.yaml': B2 }, { 'a.yaml': A1 }, ['a.yaml']));
      assert.deepEqual(plan.targets.map((t) => t.action), ['unchanged']);
      assert.equal(plan.record, true);
      assert.deepEqual(plan.keyDigests, { 'a.yaml': A1 });
    });
    it('a change of a key the release reads triggers it; a release reading everything is triggered too', () => {
      assert.deepEqual(actions(keyed({ 'a.yaml': A2 }, { 'a.yaml': A1 }, ['a.yaml'])), ['trigger']);
      assert.deepEqual(actions(keyed({ 'a.yaml': A1, 'b.yaml': B2 }, { 'a.yaml': A1, 'b.yaml': B1 })), ['trigger']);
    });
    it('a key that appears or disappears is a change; an absent key is recorded as absent', () => {
      assert.deepEqual(actions(keyed({}, { 'a.yaml': A1 }, ['a.yaml'])), ['trigger']);
      assert.deepEqual(actions(keyed({ 'a.yaml': A1 }, { 'a.yaml': '-' }, ['a.yaml'])), ['trigger']);
      assert.deepEqual(decide(keyed({}, { 'a.yaml': A1 }, ['a.yaml', 'b.yaml'])).keyDigests, { 'a.yaml': '-', 'b.yaml': '-' });
    });
    it('a key never recorded is first sight for that release: adopted when the release is newer', () => {
      const older = input(
        { keyDigests: { 'a.yaml': A1 }, recordedKeyDigests: {}, contentChangedAt: '2025-01-01T00:00:00Z' },
        { valuesKeys: ['a.yaml'] },
      );
      assert.deepEqual(actions(older), ['adopt']);
      assert.deepEqual(actions({ ...older, contentChangedAt: '2026-06-01T00:00:00Z' }), ['trigger']);
    });
    it("defers to helm-controller's watch only a changed release it watches", () => {
      assert.deepEqual(actions(input({}, { fluxWatches: true })), ['deferred']);
      assert.equal(decide(input({}, { fluxWatches: true })).record, true);
      const unchanged = input({ keyDigests: { 'a.yaml': A1 }, recordedKeyDigests: { 'a.yaml': A1 } }, { valuesKeys: ['a.yaml'], fluxWatches: true });
      assert.deepEqual(actions(unchanged), ['unchanged']);
    });
  });
});
