// A source's rollout plan: parsing (fail closed), step membership, maxUpdate, bake arithmetic with a
// fake clock, and the strictest-wins rule for a release several plans order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decisionContext } from '../../src/assess.js';
import { resolveConfig } from '../../src/config.js';
import { decide, type DecideInput } from '../../src/decide.js';
import { explain, formatReport, formatSteps } from '../../src/explain.js';
import { keysFor } from '../../src/keys.js';
import { describeGate, type Outcome, type RolloutFacts, type Stage } from '../../src/rollout/gate.js';
import { encodeRolloutRecord, readBake, readHealth, type RolloutRecord } from '../../src/rollout/health.js';
import { HOLDER, nextHoldStep, strictest } from '../../src/rollout/hold.js';
import { shortDigest } from '../../src/rollout/facts.js';
import { describeStep, parsePlan, PlanError, stepOf, updateLimit } from '../../src/rollout/plan.js';
import { type ReleaseObject, toRelease, toSource } from '../../src/sources/objects.js';
import { releaseObject } from './releases.js';

const ANNOTATION = 'uburro.github.com/rollout-plan';
const plan = (value: unknown) => parsePlan(typeof value === 'string' ? value : JSON.stringify(value), ANNOTATION);
const problem = (value: unknown): string => {
  try {
    plan(value);
  } catch (err) {
    assert.ok(err instanceof PlanError, String(err));
    assert.ok(err.message.startsWith(`${ANNOTATION}: `), err.message);
    return err.message.slice(ANNOTATION.length + 2);
  }
  assert.fail(`accepted ${JSON.stringify(value)}`);
};

describe('rollout plan: parsing', () => {
  it('reads steps, selectors, maxUpdate (a count or a percentage), bake and what happens to unselected releases', () => {
    const p = plan({
      steps: [
        { name: 'canary', selector: 'ring=canary', bake: '10m' },
        { selector: 'ring in (eu, us),tier!=test', maxUpdate: '25%' },
        { selector: 'ring=late', maxUpdate: 2 },
        { selector: 'ring=last', maxUpdate: '3' },
      ],
      unselected: 'never',
    });
    assert.deepEqual(
      p.steps.map((s) => [s.name, s.selector.text, s.maxUpdate, s.bakeMs]),
      [
        ['canary', 'ring=canary', undefined, 600_000],
        ['step 2', 'ring in (eu, us),tier!=test', { percent: 25 }, 0],
        ['step 3', 'ring=late', { count: 2 }, 0],
        ['step 4', 'ring=last', { count: 3 }, 0],
      ],
    );
    assert.equal(p.unselected, 'never');
    assert.equal(plan({ steps: [{ selector: 'a' }] }).unselected, 'last', 'unselected releases go last by default');
    assert.equal(describeStep(p.steps[0]!), 'canary (ring=canary, bake 10m)');
    assert.equal(describeStep(p.steps[1]!), 'step 2 (ring in (eu, us),tier!=test, maxUpdate 25%)');
  });

  it('fails closed on anything it cannot read, naming the step and the field', () => {
    assert.match(problem('{"steps": ['), /^not JSON/);
    assert.match(problem('[]'), /^expected a JSON object/);
    assert.match(problem({ steps: [] }), /no steps/);
    assert.match(problem({}), /steps: expected array/);
    assert.match(problem({ steps: [{ selector: 'ring==canary,' }] }), /step 1 selector: selector "ring==canary,": empty requirement/);
    assert.match(problem({ steps: [{ selector: 'ring=can ary' }] }), /step 1 selector: .*invalid label/);
    assert.match(problem({ steps: [{ selector: '  ' }] }), /selector is empty/);
    for (const bad of ['0%', '101%', '25 %', '%', '0', '-1', '1.5', 'all']) assert.match(problem({ steps: [{ selector: 'a', maxUpdate: bad }] }), /step 1 maxUpdate: maxUpdate must be/, bad);
    for (const bad of [0, -2, 1.5]) assert.match(problem({ steps: [{ selector: 'a', maxUpdate: bad }] }), /step 1 maxUpdate: maxUpdate must be a positive integer/, String(bad));
    assert.match(problem({ steps: [{ selector: 'a', bake: 'ten minutes' }] }), /step 1 bake: bake must be a Go duration/);
    assert.match(problem({ steps: [{ selector: 'a', bake: '-1m' }] }), /bake must be a Go duration/);
    assert.match(problem({ steps: [{ selector: 'a', wave: 1 }] }), /step 1: unknown field "wave"/);
    assert.match(problem({ steps: [{ selector: 'a' }], unselected: 'first' }), /unselected: expected "last" or "never"/);
    assert.match(problem({ steps: [{ name: 'x', selector: 'a' }, { name: 'x', selector: 'b' }] }), /two steps are named "x"/);
    assert.match(problem({ steps: Array.from({ length: 33 }, () => ({ selector: 'a' })) }), /33 steps, at most 32/);
    // Every problem at once.
    assert.match(problem({ steps: [{ selector: '' }, { selector: 'a', maxUpdate: '0%' }] }), /step 1 selector: .*; step 2 maxUpdate/);
  });
});

describe('rollout plan: membership and limits', () => {
  const p = plan({ steps: [{ name: 'canary', selector: 'ring=canary' }, { name: 'eu', selector: 'region=eu' }] });

  it('puts a release in the first step that selects it; unselected ones last or never', () => {
    assert.equal(stepOf(p, { ring: 'canary', region: 'eu' }), 0, 'the first matching step wins');
    assert.equal(stepOf(p, { region: 'eu' }), 1);
    assert.equal(stepOf(p, { region: 'us' }), 2, 'after the last step');
    assert.equal(stepOf(p, {}), 2);
    assert.equal(stepOf(plan({ steps: [{ selector: 'ring=canary' }], unselected: 'never' }), { region: 'us' }), 'never');
  });

  it('reads maxUpdate against the step\'s releases: a percentage rounds down, but never below one', () => {
    assert.equal(updateLimit(undefined, 10), Infinity);
    assert.equal(updateLimit({ count: 2 }, 10), 2);
    assert.equal(updateLimit({ percent: 25 }, 10), 2);
    assert.equal(updateLimit({ percent: 25 }, 3), 1);
    assert.equal(updateLimit({ percent: 100 }, 7), 7);
  });
});

// --- bake arithmetic, with a fake clock ------------------------------------------------------------

const T = Date.parse('2026-12-07T10:00:00Z');
const MIN = 60_000;
const record: RolloutRecord = { at: new Date(T).toISOString(), v: 3, f: 0, force: true, src: {}, track: true };
const ready = (status: string, since: number, reason = 'UpgradeSucceeded') => ({ status, reason, message: '', observedGeneration: 2, since });

/** Upgraded by the trigger (v4 deployed at T + 1 min), Ready as given. */
function upgraded(readyCondition = ready('True', T + MIN), extra: Partial<ReleaseObject> = {}): ReleaseObject {
  return releaseObject('app', {
    generation: 2,
    requestedAt: record.at,
    lastHandledReconcileAt: record.at,
    lastAttemptedConfigDigest: 'sha256:cfg',
    failures: 0,
    newest: { version: 4, status: 'deployed', action: 'upgrade', configDigest: 'sha256:cfg', deployedAt: T + MIN },
    badVersion: 0,
    conditions: { ready: readyCondition, reconciling: undefined, stalled: undefined, testSuccess: undefined, released: undefined },
    ...extra,
  });
}

const bakeAt = (release: ReleaseObject, now: number, bakeMs = 10 * MIN) => readBake(release, record, readHealth(release, record, now, 15 * MIN), bakeMs, now);

describe('bake', () => {
  it('counts from the deployed release: baking until then, done after', () => {
    assert.deepEqual(bakeAt(upgraded(), T + 5 * MIN), { state: 'baking', until: T + 11 * MIN });
    assert.deepEqual(bakeAt(upgraded(), T + 11 * MIN), { state: 'succeeded' });
    assert.deepEqual(bakeAt(upgraded(), T + 5 * MIN, 0), { state: 'succeeded' }, 'no bake: the health reading alone');
  });

  it('fails when Ready turns False before the bake ends, whatever the reason', () => {
    const turned = upgraded(ready('False', T + 4 * MIN, 'InitFailed'));
    const baked = bakeAt(turned, T + 5 * MIN);
    assert.equal(baked.state, 'failed');
    assert.ok(baked.state === 'failed' && baked.reason === 'InitFailed' && /Ready=False during its bake \(until 2026-12-07T10:11:00.000Z\)/.test(baked.message), JSON.stringify(baked));
    // Still failed once the bake would have ended: it did not stay healthy.
    assert.equal(bakeAt(turned, T + 30 * MIN).state, 'failed');
  });

  it('does not count what happened after the bake ended against the step', () => {
    assert.deepEqual(bakeAt(upgraded(ready('False', T + 12 * MIN, 'InitFailed')), T + 13 * MIN), { state: 'succeeded' });
  });

  it('fails on a rollback or a new failure during the bake, as the health reading does', () => {
    assert.equal(bakeAt(upgraded(undefined, { badVersion: 5, newest: { version: 5, status: 'deployed', action: 'rollback', configDigest: 'x', deployedAt: T + 3 * MIN } }), T + 4 * MIN).state, 'failed');
    assert.equal(bakeAt(upgraded(undefined, { failures: 1 }), T + 4 * MIN).state, 'failed');
  });

  it('waits for the upgrade itself: not deployed yet is progressing, not baking', () => {
    const pending = upgraded(ready('Unknown', T), { lastHandledReconcileAt: undefined, newest: { version: 3, status: 'deployed', action: 'install', configDigest: 'old', deployedAt: T - 60 * MIN } });
    assert.deepEqual(bakeAt(pending, T + MIN), { state: 'progressing' });
  });

  it('a periodic reconcile during or after the bake is no timeout and no failure', () => {
    const busy = upgraded(ready('Unknown', T + 20 * MIN, 'Progressing'), {
      conditions: { ready: ready('Unknown', T + 20 * MIN, 'Progressing'), reconciling: ready('True', T + 20 * MIN, 'Progressing'), stalled: undefined, testSuccess: undefined, released: undefined },
    });
    // 20 minutes after the trigger, past the 15-minute wave timeout.
    assert.deepEqual(readHealth(busy, record, T + 20 * MIN, 15 * MIN), { state: 'progressing' });
    assert.deepEqual(bakeAt(busy, T + 20 * MIN), { state: 'progressing' });
  });
});

// --- the gate under a plan ----------------------------------------------------------------------

const OURS = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;

interface G {
  name: string;
  step?: number;
  outcome?: Outcome;
  facts?: RolloutFacts;
}

function decideWith(stages: Stage[], targets: G[], overrides: Partial<DecideInput> = {}) {
  return decide({
    digest: NEW,
    recorded: OURS,
    keyDigests: {},
    recordedKeyDigests: {},
    contentChangedAt: '2026-06-01T00:00:00Z',
    stages,
    targets: targets.map((t) => ({
      ref: { namespace: 'ns', name: t.name },
      release: releaseObject(t.name),
      triggeredDigest: t.outcome ? NEW : undefined,
      rollout: { wave: t.step, outcome: t.outcome, ...t.facts },
    })),
    ...overrides,
  });
}
const actions = (p: ReturnType<typeof decide>) => p.targets.map((t) => `${t.ref.name}:${t.action}`);

describe('rollout plan: the gate', () => {
  const stages: Stage[] = [{ name: 'canary' }, { name: 'ring-a', maxUpdate: { count: 1 } }, { name: 'unselected' }];

  it('goes step by step, naming the step a release waits for', () => {
    const p = decideWith(stages, [{ name: 'c', step: 0 }, { name: 'a1', step: 1 }, { name: 'z', step: 2 }]);
    assert.deepEqual(actions(p), ['c:trigger', 'a1:gated', 'z:gated']);
    assert.equal(describeGate(p.targets[1]!.gate!), 'waiting for step canary to be healthy with this content: ns/c');
  });

  it('says until when a step bakes', () => {
    const until = Date.parse('2026-12-07T10:11:00Z');
    const p = decideWith(stages, [{ name: 'c', step: 0, outcome: { state: 'baking', until } }, { name: 'a1', step: 1 }]);
    assert.deepEqual(actions(p), ['c:done', 'a1:gated']);
    assert.equal(describeGate(p.targets[1]!.gate!), 'waiting for step canary to bake until 2026-12-07T10:11:00.000Z: ns/c');
    assert.equal(p.targets[1]!.gate!.gate === 'gated' && p.targets[1]!.gate!.stage, 'canary');
    assert.equal(p.wakeAt, until, 'decided again when the bake ends');
  });

  it('maxUpdate 1 in a ring of three: one at a time, in name order; one asked for keeps its slot', () => {
    const passed: Outcome = { state: 'succeeded' };
    const ring = (a: G['outcome'], b: G['outcome'], requestedC = false) =>
      decideWith(stages, [
        { name: 'c', step: 0, outcome: passed },
        { name: 'a3', step: 1, facts: requestedC ? { requested: true } : {} },
        { name: 'a1', step: 1, outcome: a },
        { name: 'a2', step: 1, outcome: b },
      ]);
    // Nothing triggered yet: a1 first.
    assert.deepEqual(actions(ring(undefined, undefined)), ['c:done', 'a3:gated', 'a1:trigger', 'a2:gated']);
    const slot = ring(undefined, undefined).targets[1]!.gate!;
    assert.equal(describeGate(slot), 'waiting for a slot in step ring-a (maxUpdate 1): upgrading ');
    // a1 upgrading: nobody else goes.
    assert.deepEqual(actions(ring({ state: 'progressing', deadline: 1 }, undefined)), ['c:done', 'a3:gated', 'a1:done', 'a2:gated']);
    assert.match(describeGate(ring({ state: 'progressing', deadline: 1 }, undefined).targets[1]!.gate!), /upgrading ns\/a1$/);
    // a1 healthy (a bake does not hold a slot): a2 next.
    assert.deepEqual(actions(ring(passed, undefined)), ['c:done', 'a3:gated', 'a1:done', 'a2:trigger']);
    assert.deepEqual(actions(ring({ state: 'baking', until: 9 }, undefined)), ['c:done', 'a3:gated', 'a1:done', 'a2:trigger']);
    // a3's trigger was asked for already (waiting for the debounce): it keeps the slot, a1 waits.
    assert.deepEqual(actions(ring(undefined, undefined, true)), ['c:done', 'a3:trigger', 'a1:gated', 'a2:gated']);
  });

  it('halts on a failure in a step, naming the step', () => {
    const p = decideWith(stages, [{ name: 'c', step: 0, outcome: { state: 'failed', reason: 'UpgradeFailed', message: 'boom' } }, { name: 'a1', step: 1 }]);
    assert.deepEqual(actions(p), ['c:done', 'a1:halted']);
    assert.equal(describeGate(p.targets[1]!.gate!), "halted: step canary's ns/c failed (UpgradeFailed: boom)");
  });

  it('holds a release no step selects when the plan says never', () => {
    const p = decideWith(stages, [{ name: 'c', step: 0 }, { name: 'x', facts: { unselected: true } }]);
    assert.deepEqual(actions(p), ['c:trigger', 'x:held']);
    assert.match(describeGate(p.targets[1]!.gate!), /no step of the rollout plan selects it/);
  });
});

describe('rollout plan: several plans, one release', () => {
  it('the strictest wins: the release is held while any source holds it, for the strictest reason', () => {
    assert.equal(strictest(['window', 'step', 'in-flight']), 'step');
    assert.equal(strictest(['max-update', 'halted', 'wave']), 'halted');
    assert.equal(strictest(['window', 'max-update']), 'max-update');
    assert.equal(strictest([]), undefined);
    const step = nextHoldStep({
      suspend: false,
      mark: undefined,
      // One plan lets it go (no hold), one waits for its canary step, one holds it by a window.
      holds: new Map([
        ['ConfigMap/ns/window-held', { digest: OURS, reason: 'window' }],
        ['ConfigMap/ns/planned', { digest: NEW, reason: 'step' }],
      ]),
      triggerDue: true,
      version: 3,
      attempted: undefined,
      suspendManager: undefined,
      now: '2026-12-07T10:00:00.000Z',
      short: shortDigest,
    });
    assert.equal(step.step, 'suspend');
    assert.ok(step.step === 'suspend' && step.mark.by === HOLDER && step.mark.reason === 'step');
    assert.deepEqual(step.step === 'suspend' && Object.keys(step.mark.src), ['ConfigMap/ns/planned', 'ConfigMap/ns/window-held']);
  });
});

// --- the plan on a source, read by the same assessment the controller acts on --------------------

const keys = keysFor();
const NOW = Date.parse('2026-12-07T12:00:00Z');
const ctx = { ...decisionContext(resolveConfig({}), keys), now: () => NOW };
const source = (annotations: Record<string, string>, namespace = 'hub') =>
  toSource('ConfigMap', keys)({ metadata: { name: 'platform', namespace, resourceVersion: '1', annotations: { [keys.configDigest]: OURS, ...annotations }, creationTimestamp: '2026-01-01T00:00:00Z' }, data: { 'values.yaml': 'a: 2\n' } });
const hubRelease = (name: string, labels: Record<string, string>, cluster?: string, namespace = 'hub', annotations: Record<string, string> = {}) =>
  toRelease({
    metadata: { name, namespace, resourceVersion: '1', labels, annotations },
    spec: { valuesFrom: [{ kind: 'ConfigMap', name: 'platform' }], ...(cluster ? { kubeConfig: { secretRef: { name: cluster } } } : {}) },
    status: { history: [{ status: 'deployed', version: 1, lastDeployed: '2025-01-01T00:00:00Z' }] },
  });
const PLAN = JSON.stringify({ steps: [{ name: 'canary', selector: 'ring=canary', bake: '10m' }, { name: 'rest', selector: 'ring=main', maxUpdate: 1 }] });

describe('rollout plan on a source', () => {
  it('orders only the releases the source targets: a plan naming other teams\' rings by label reaches none of them', () => {
    const src = source({ [keys.rolloutPlan]: PLAN });
    const ours = [hubRelease('app-spoke-a', { ring: 'canary' }, 'spoke-a'), hubRelease('app-spoke-b', { ring: 'main' }, 'spoke-b'), hubRelease('app-hub', { ring: 'main' })];
    // Another team's release with the same ring label, in another namespace, reading its own ConfigMap.
    const theirs = toRelease({ metadata: { name: 'theirs', namespace: 'team-b', resourceVersion: '1', labels: { ring: 'canary' } }, spec: { valuesFrom: [{ kind: 'ConfigMap', name: 'other' }] } });
    const report = explain([src], [...ours, theirs], ctx);
    const rows = new Map(report.releases.map((r) => [r.release, r.sources.find((s) => s.source === src.key)]));
    assert.equal(rows.get('team-b/theirs'), undefined, 'not a target: untouched');
    assert.equal(rows.get('hub/app-spoke-a')?.state, 'trigger');
    assert.equal(rows.get('hub/app-spoke-b')?.state, 'gated');
    assert.equal(rows.get('hub/app-hub')?.state, 'gated');
    assert.equal(rows.get('hub/app-spoke-b')?.step, 'rest');
    const table = formatReport(report);
    assert.match(table.split('\n')[0]!, /^HELMRELEASE +CLUSTER +WAVE\/STEP +SOURCE/);
    assert.match(table, /hub\/app-spoke-a +spoke-a +canary +ConfigMap\/hub\/platform/);
    assert.match(table, /hub\/app-hub +local +rest +ConfigMap\/hub\/platform .*waiting for step canary to be healthy with this content: hub\/app-spoke-a/);
    const steps = formatSteps(report);
    assert.equal(
      steps,
      [
        'ConfigMap/hub/platform',
        '  step canary (ring=canary, bake 10m)',
        '    cluster spoke-a:',
        '      hub/app-spoke-a: trigger pending: the content changed since the recorded digest',
        '  step rest (ring=main, maxUpdate 1)',
        '    cluster local:',
        '      hub/app-hub: waiting for step canary to be healthy with this content: hub/app-spoke-a',
        '    cluster spoke-b:',
        '      hub/app-spoke-b: waiting for step canary to be healthy with this content: hub/app-spoke-a',
        '  step unselected (every release no step selects, last)',
        '    (no release)',
        '',
      ].join('\n'),
    );
  });

  it('fails closed on an unreadable plan: every change of the source is held', () => {
    const src = source({ [keys.rolloutPlan]: '{"steps": []}' });
    const report = explain([src], [hubRelease('a', { ring: 'canary' }), hubRelease('b', {})], ctx);
    for (const r of report.releases) {
      const row = r.sources[0]!;
      assert.equal(row.state, 'held');
      assert.match(row.reason, /^held: uburro.github.com\/rollout-plan: no steps/);
    }
    assert.match(formatSteps(report), /^ConfigMap\/hub\/platform: uburro.github.com\/rollout-plan: no steps/);
  });

  it('follows the plan over a release\'s own wave, and its windows still apply', () => {
    const src = source({ [keys.rolloutPlan]: PLAN });
    const waved = hubRelease('a', { ring: 'main' }, undefined, 'hub', { [keys.wave]: 'not-a-number' });
    const canary = hubRelease('c', { ring: 'canary' }, undefined, 'hub', { [keys.wave]: '9', [keys.triggerWindows]: '[{"cron": "0 0 1 1 *", "window": "1m"}]' });
    const report = explain([src], [waved, canary], ctx);
    const state = (name: string) => report.releases.find((r) => r.release === `hub/${name}`)!.sources[0]!;
    assert.equal(state('a').state, 'gated', 'an unreadable wave does not hold it: the plan orders it');
    assert.equal(state('c').state, 'held');
    assert.match(state('c').reason, /outside its trigger windows/);
  });

  it('keeps the status of a planned release only once a trigger\'s record asks for it', () => {
    const raw = (annotations: Record<string, string>) => ({
      metadata: { name: 'a', namespace: 'hub', resourceVersion: '1', annotations },
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', lastTransitionTime: '2026-12-07T10:00:00Z' }] },
    });
    assert.equal(toRelease(raw({}), keys).conditions, undefined);
    const untracked = encodeRolloutRecord({ ...record, track: undefined });
    assert.equal(toRelease(raw({ [keys.rolloutRecord]: untracked }), keys).conditions, undefined);
    const tracked = toRelease(raw({ [keys.rolloutRecord]: encodeRolloutRecord(record) }), keys);
    assert.equal(tracked.tracked, true);
    assert.equal(tracked.conditions?.ready?.since, Date.parse('2026-12-07T10:00:00Z'));
  });
});

describe('a planned source with many targets', () => {
  it('gathers the wakes of its release events for a time that grows with its targets: none for a small source', async () => {
    const { gatherMs } = await import('../../src/reconciler.js');
    assert.equal(gatherMs(1), 0);
    assert.equal(gatherMs(9), 0, 'a source of a few releases is decided at once, as before');
    assert.equal(gatherMs(100), 10);
    assert.equal(gatherMs(2000), 200);
    assert.equal(gatherMs(50_000), 500, 'never more than half a second');
  });
});
