import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentNewerThanRelease, decide, type DecideInput } from '../../src/decide.js';
import type { ReleaseObject } from '../../src/sources/objects.js';

const OURS = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;

function release(overrides: Partial<ReleaseObject> = {}): ReleaseObject {
  return {
    key: 'ns/app',
    resourceVersion: '1',
    namespace: 'ns',
    name: 'app',
    uid: 'u',
    suspended: false,
    lastRelease: { deployedAt: '2026-01-01T00:00:00Z', status: 'deployed' },
    ...overrides,
  };
}

function input(overrides: Partial<DecideInput> = {}, target: Partial<DecideInput['targets'][number]> = {}): DecideInput {
  return {
    digest: NEW,
    recorded: OURS,
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
    assert.deepEqual(plan.targets, []);
    assert.equal(plan.record, false);
  });
  it('triggers on a changed digest, whatever the release status, and records', () => {
    for (const status of ['deployed', 'failed', 'superseded']) {
      const plan = decide(input({}, { release: release({ lastRelease: { deployedAt: '2027-01-01T00:00:00Z', status } }) }));
      assert.deepEqual(plan.targets.map((t) => t.action), ['trigger']);
      assert.equal(plan.record, true);
      assert.equal(plan.firstSight, false);
    }
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
});
