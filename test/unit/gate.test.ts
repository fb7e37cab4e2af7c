// Windows and waves as the decision sees them: pure facts in, held/gated/halted out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, type DecideInput, type TargetInput } from '../../src/decide.js';
import type { Outcome, RolloutFacts } from '../../src/rollout/gate.js';
import type { ReleaseObject } from '../../src/sources/objects.js';
import { releaseObject } from './releases.js';

const OURS = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;

interface T {
  name: string;
  wave?: number;
  /** Triggered for this content already, and what came of it. */
  outcome?: Outcome;
  facts?: RolloutFacts;
  release?: Partial<ReleaseObject> | null;
  extra?: Partial<TargetInput>;
}

function input(targets: T[], overrides: Partial<DecideInput> = {}): DecideInput {
  return {
    digest: NEW,
    recorded: OURS,
    keyDigests: {},
    recordedKeyDigests: {},
    contentChangedAt: '2026-06-01T00:00:00Z',
    targets: targets.map((t) => ({
      ref: { namespace: 'ns', name: t.name },
      release: t.release === null ? undefined : releaseObject(t.name, t.release ?? {}),
      triggeredDigest: t.outcome ? NEW : undefined,
      rollout: { wave: t.wave, outcome: t.outcome, ...t.facts },
      ...t.extra,
    })),
    ...overrides,
  };
}

const plan = (targets: T[], overrides: Partial<DecideInput> = {}) => decide(input(targets, overrides));
const actions = (targets: T[], overrides: Partial<DecideInput> = {}) => plan(targets, overrides).targets.map((t) => `${t.ref.name}:${t.action}`);

const progressing: Outcome = { state: 'progressing', deadline: 5_000 };
const succeeded: Outcome = { state: 'succeeded' };
const failed: Outcome = { state: 'failed', reason: 'UpgradeFailed', message: 'values don\'t meet the specifications of the schema' };

describe('rollout gate in decide', () => {
  it('without rollout facts every consumer is triggered at once, as before', () => {
    assert.deepEqual(actions([{ name: 'a' }, { name: 'b' }]), ['a:trigger', 'b:trigger']);
  });

  it('triggers the lowest wave first and gates the others on it', () => {
    const p = plan([{ name: 'a1', wave: 1 }, { name: 'a2', wave: 1 }, { name: 'b', wave: 2 }, { name: 'c', wave: 3 }, { name: 'free' }]);
    assert.deepEqual(p.targets.map((t) => t.action), ['trigger', 'trigger', 'gated', 'gated', 'trigger']);
    const g = p.targets[2]!.gate;
    assert.ok(g?.gate === 'gated');
    assert.equal(g.wave, 1);
    assert.deepEqual(g.waitingFor.map((r) => r.name), ['a1', 'a2']);
    assert.equal(p.record, false);
  });

  it('holds wave 2 while a wave-1 release is still progressing, and wakes at its health deadline', () => {
    const p = plan([{ name: 'a1', wave: 1, outcome: succeeded }, { name: 'a2', wave: 1, outcome: progressing }, { name: 'b', wave: 2 }]);
    assert.deepEqual(p.targets.map((t) => t.action), ['done', 'done', 'gated']);
    assert.equal(p.wakeAt, 5_000);
  });

  it('advances once every release of the wave succeeded, one wave at a time', () => {
    assert.deepEqual(actions([{ name: 'a', wave: 1, outcome: succeeded }, { name: 'b', wave: 2 }, { name: 'c', wave: 3 }]), ['a:done', 'b:trigger', 'c:gated']);
    const last = plan([{ name: 'a', wave: 1, outcome: succeeded }, { name: 'b', wave: 2, outcome: succeeded }, { name: 'c', wave: 3, outcome: progressing }]);
    assert.deepEqual(last.targets.map((t) => t.action), ['done', 'done', 'done']);
    assert.equal(last.record, true, 'every wave triggered: the digest is recorded');
  });

  it('halts every later wave when a release fails, naming it and its reason', () => {
    const p = plan([{ name: 'a1', wave: 1, outcome: succeeded }, { name: 'a2', wave: 1, outcome: failed }, { name: 'b', wave: 2 }, { name: 'c', wave: 3 }, { name: 'free' }]);
    assert.deepEqual(p.targets.map((t) => t.action), ['done', 'done', 'halted', 'halted', 'trigger']);
    const g = p.targets[3]!.gate;
    assert.ok(g?.gate === 'halted');
    assert.equal(g.failed.ref.name, 'a2');
    assert.equal(g.failed.reason, 'UpgradeFailed');
    assert.equal(p.record, false, 'a halted rollout is not recorded: a new change or a resume continues it');
  });

  it('resumes a halted rollout when the source says so for this content', () => {
    assert.deepEqual(actions([{ name: 'a', wave: 1, outcome: failed }, { name: 'b', wave: 2 }], { resumed: true }), ['a:done', 'b:trigger']);
  });

  it('a new change starts from the first wave: releases triggered for an older content are pending again', () => {
    // The failed trigger was for OURS; the content is NEW: no outcome for NEW yet.
    assert.deepEqual(actions([{ name: 'a', wave: 1 }, { name: 'b', wave: 2 }]), ['a:trigger', 'b:gated']);
  });

  it('rollout-now on the source or on the release bypasses waves and windows', () => {
    const closed: RolloutFacts = { window: { open: false, opensAt: 9_000 } };
    assert.deepEqual(actions([{ name: 'a', wave: 1 }, { name: 'b', wave: 2, facts: closed }], { rolloutNow: true }), ['a:trigger', 'b:trigger']);
    assert.deepEqual(actions([{ name: 'a', wave: 1 }, { name: 'b', wave: 2, facts: { ...closed, now: true } }]), ['a:trigger', 'b:trigger']);
  });

  it('holds outside the window and wakes when it opens; an open window changes nothing', () => {
    const p = plan([{ name: 'a', facts: { window: { open: false, opensAt: 9_000 } } }, { name: 'b', facts: { window: { open: true } } }]);
    assert.deepEqual(p.targets.map((t) => t.action), ['held', 'trigger']);
    assert.deepEqual(p.targets[0]!.gate, { gate: 'held', by: 'window', opensAt: 9_000 });
    assert.equal(p.wakeAt, 9_000);
  });

  it('a held lower wave keeps the higher waves waiting: order is kept across windows', () => {
    assert.deepEqual(actions([{ name: 'a', wave: 1, facts: { window: { open: false, opensAt: 9_000 } } }, { name: 'b', wave: 2 }]), ['a:held', 'b:gated']);
  });

  it('fails closed on a release whose wave or windows cannot be read, and holds nothing else', () => {
    const p = plan([{ name: 'bad', facts: { invalid: 'wave "one" is not an integer' } }, { name: 'a', wave: 1 }, { name: 'b', wave: 2 }]);
    assert.deepEqual(p.targets.map((t) => t.action), ['held', 'trigger', 'gated']);
    assert.deepEqual(p.targets[0]!.gate, { gate: 'held', by: 'invalid', message: 'wave "one" is not an integer' });
  });

  it('releases that cannot act do not hold later waves, and are reported as skipped', () => {
    const p = plan([
      { name: 'gone', wave: 1, release: null },
      { name: 'susp', wave: 1, release: { suspended: true } },
      { name: 'paused', wave: 1, release: { paused: true } },
      { name: 'b', wave: 2 },
    ]);
    assert.deepEqual(p.targets.map((t) => t.action), ['missing', 'suspended', 'paused', 'trigger']);
    assert.deepEqual(p.skipped.map((t) => t.ref.name), ['gone', 'susp', 'paused']);
  });

  it("releases left to helm-controller's watch are not part of any wave", () => {
    assert.deepEqual(actions([{ name: 'flux', wave: 1, extra: { fluxWatches: true } }, { name: 'b', wave: 2 }]), ['flux:deferred', 'b:trigger']);
  });

  it('releases whose keys did not change are not part of the rollout', () => {
    const A = `sha256:${'1'.repeat(64)}`;
    const p = plan([{ name: 'reads-other', wave: 1, extra: { valuesKeys: ['a.yaml'] } }, { name: 'b', wave: 2 }], {
      keyDigests: { 'a.yaml': A },
      recordedKeyDigests: { 'a.yaml': A },
    });
    assert.deepEqual(p.targets.map((t) => t.action), ['unchanged', 'trigger']);
  });
});
