// The hold of a change, as a pure state machine: when hrto suspends a release, when it lifts the
// suspension, whose suspension it is, and what an override does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeHoldMark,
  HOLDER,
  type HoldInput,
  type HoldMark,
  holdPatch,
  holdStale,
  holdState,
  nextHoldStep,
  parseHoldMark,
  releaseFields,
} from '../../src/rollout/hold.js';
import { shortDigest } from '../../src/rollout/facts.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const CM = 'ConfigMap/apps/values';
const OTHER = 'ConfigMap/apps/other';
const NOW = '2026-12-07T10:00:00.000Z';
const ANNOTATION = 'uburro.github.com/suspended-by';

const mark = (src: Record<string, string>, over?: string): HoldMark => ({ by: HOLDER, reason: 'wave', since: '2026-12-07T09:00:00.000Z', v: 3, src, ...(over ? { over } : {}) });

function input(overrides: Partial<HoldInput> = {}): HoldInput {
  return { suspend: false, mark: undefined, holds: new Map(), triggerDue: false, version: 3, attempted: undefined, suspendManager: undefined, now: NOW, short: shortDigest, ...overrides };
}

describe('hold marks', () => {
  it('round-trip, and anything that is not hrto\'s is no mark', () => {
    const m = mark({ [CM]: shortDigest(A) });
    assert.deepEqual(parseHoldMark(encodeHoldMark(m)), m);
    assert.deepEqual(parseHoldMark(encodeHoldMark({ ...m, over: 'kubectl-patch' })), { ...m, over: 'kubectl-patch' });
    for (const bad of [undefined, '', 'not json', '[]', '{"by":"someone","reason":"wave","since":"x","v":1,"src":{}}', '{"by":"helmrelease-trigger-operator"}']) {
      assert.equal(parseHoldMark(bad), undefined, String(bad));
    }
  });

  it('tell whose suspension it is', () => {
    assert.equal(holdState(false, undefined), 'free');
    assert.equal(holdState(true, undefined), 'person');
    assert.equal(holdState(true, mark({})), 'held');
    assert.equal(holdState(false, mark({})), 'lifted');
    assert.equal(holdState(false, mark({}, 'kubectl')), 'overridden');
    assert.equal(holdState(true, mark({}, 'kubectl')), 'person', 'suspended again after an override: a person\'s');
  });
});

describe('the next step of a hold', () => {
  const holding = (digest = A, source = CM) => new Map([[source, { digest, reason: 'wave' as const }]]);

  it('suspends a free release when a source holds a change, with a mark naming the content and why', () => {
    const step = nextHoldStep(input({ holds: holding() }));
    assert.equal(step.step, 'suspend');
    assert.deepEqual(step.step === 'suspend' && step.mark, { by: HOLDER, reason: 'wave', since: NOW, v: 3, src: { [CM]: shortDigest(A) } });
  });

  it('never touches a release a person suspended', () => {
    assert.deepEqual(nextHoldStep(input({ suspend: true, holds: holding() })), { step: 'none' });
    assert.deepEqual(nextHoldStep(input({ suspend: true })), { step: 'none' });
  });

  it('keeps a live hold as it is, and lifts nothing while a reason lives', () => {
    assert.deepEqual(nextHoldStep(input({ suspend: true, mark: mark({ [CM]: shortDigest(A) }), holds: holding() })), { step: 'none' });
    assert.deepEqual(nextHoldStep(input({ suspend: true, mark: mark({ [CM]: shortDigest(A) }), holds: holding(), triggerDue: true })), { step: 'none' }, 'another source\'s trigger waits');
  });

  it('re-marks a held release when a newer change supersedes the held one (no second suspension)', () => {
    const step = nextHoldStep(input({ suspend: true, mark: mark({ [CM]: shortDigest(A) }), holds: holding(B) }));
    assert.equal(step.step, 'remark');
    assert.deepEqual(step.step === 'remark' && step.mark.src, { [CM]: shortDigest(B) });
    assert.equal(step.step === 'remark' && step.mark.since, '2026-12-07T09:00:00.000Z', 'held since the first suspension');
  });

  it('leaves the lift to the trigger when one is due, and lifts at once when none is', () => {
    const held = { suspend: true, mark: mark({ [CM]: shortDigest(A) }) };
    assert.deepEqual(nextHoldStep(input({ ...held, triggerDue: true })), { step: 'none' });
    assert.deepEqual(nextHoldStep(input(held)), { step: 'lift' });
  });

  it('takes a suspension someone else lifted as an override, naming the field manager', () => {
    const step = nextHoldStep(input({ suspend: false, mark: mark({ [CM]: shortDigest(A) }), holds: holding(), suspendManager: 'flux-client-side-apply' }));
    assert.equal(step.step, 'override');
    assert.equal(step.step === 'override' && step.by, 'flux-client-side-apply');
    assert.equal(step.step === 'override' && step.mark.over, 'flux-client-side-apply');
  });

  it('does not suspend again for overridden contents, but does for a newer change', () => {
    const overridden = { suspend: false, mark: mark({ [CM]: shortDigest(A) }, 'kubectl-patch') };
    assert.deepEqual(nextHoldStep(input({ ...overridden, holds: holding(A) })), { step: 'none' });
    const newer = nextHoldStep(input({ ...overridden, holds: holding(B) }));
    assert.equal(newer.step, 'suspend');
    assert.equal(newer.step === 'suspend' && newer.mark.over, undefined);
    assert.deepEqual(nextHoldStep(input(overridden)), { step: 'unmark' }, 'nothing held any more: the mark goes');
  });

  it('sees a held change that got through without the trigger: a newer revision, or an attempt with other values', () => {
    const held = { suspend: true, mark: { ...mark({ [CM]: shortDigest(A) }), a: 'sha256:111111111111' }, holds: holding() };
    assert.deepEqual(nextHoldStep(input({ ...held, attempted: 'sha256:111111111111' })), { step: 'none' }, 'nothing new');
    assert.equal(nextHoldStep(input({ ...held, version: 4 })).step, 'slipped', 'an interval reconcile begun before the suspension upgraded it');
    assert.equal(nextHoldStep(input({ ...held, attempted: 'sha256:222222222222' })).step, 'slipped', 'it attempted other values (a schema violation stores no revision)');
    const overridden = { suspend: false, mark: mark({ [CM]: shortDigest(A) }, 'kubectl-patch'), holds: holding() };
    assert.equal(nextHoldStep(input({ ...overridden, version: 4 })).step, 'slipped', 'after a person lifted the hold');
    assert.equal(nextHoldStep(input({ suspend: false, mark: mark({ [CM]: shortDigest(A) }), holds: holding(), version: 4 })).step, 'override', 'who lifted it is recorded first');
    const fresh = nextHoldStep(input({ holds: holding(), attempted: 'sha256:111111111111' }));
    assert.equal(fresh.step === 'suspend' && fresh.mark.a, 'sha256:111111111111', 'the mark notes the last attempted values');
  });

  it('holds for every source at once: the strictest wins', () => {
    const two = new Map([
      [CM, { digest: A, reason: 'wave' as const }],
      [OTHER, { digest: B, reason: 'window' as const }],
    ]);
    const step = nextHoldStep(input({ holds: two }));
    assert.deepEqual(step.step === 'suspend' && step.mark.src, { [OTHER]: shortDigest(B), [CM]: shortDigest(A) });
  });
});

describe('hold patches', () => {
  it('suspend with the mark, conditional on the resourceVersion', () => {
    const m = mark({ [CM]: shortDigest(A) });
    assert.deepEqual(holdPatch({ step: 'suspend', mark: m }, ANNOTATION, '42'), { metadata: { resourceVersion: '42', annotations: { [ANNOTATION]: encodeHoldMark(m) } }, spec: { suspend: true } });
    assert.deepEqual(holdPatch({ step: 'lift' }, ANNOTATION, '43'), { metadata: { resourceVersion: '43', annotations: { [ANNOTATION]: null } }, spec: { suspend: false } });
    assert.deepEqual(holdPatch({ step: 'unmark' }, ANNOTATION, '44'), { metadata: { resourceVersion: '44', annotations: { [ANNOTATION]: null } } });
  });

  it('the trigger resumes only hrto\'s suspension, and drops an override\'s mark', () => {
    assert.deepEqual(releaseFields(true, mark({}), ANNOTATION), { spec: { suspend: false }, annotations: { [ANNOTATION]: null } });
    assert.deepEqual(releaseFields(false, mark({}, 'kubectl'), ANNOTATION), { annotations: { [ANNOTATION]: null } });
    assert.equal(releaseFields(true, undefined, ANNOTATION), undefined, 'a person\'s suspension');
    assert.equal(releaseFields(false, undefined, ANNOTATION), undefined);
  });
});

describe('whether a source\'s wish differs from the mark', () => {
  const value = encodeHoldMark(mark({ [CM]: shortDigest(A) }));
  it('asks for a look only when something would change', () => {
    assert.equal(holdStale(false, undefined, CM, shortDigest(A), false), false, 'nothing held, no mark: no look (the common path)');
    assert.equal(holdStale(false, undefined, CM, shortDigest(A), true), true);
    assert.equal(holdStale(true, value, CM, shortDigest(A), true), false, 'held for this content already');
    assert.equal(holdStale(true, value, CM, shortDigest(B), true), true, 'a newer content');
    assert.equal(holdStale(true, value, CM, shortDigest(A), false), true, 'no longer held by this source');
    assert.equal(holdStale(true, value, OTHER, shortDigest(A), false), false, 'another source never held it');
    assert.equal(holdStale(false, value, CM, shortDigest(A), true), true, 'lifted by someone: an override to record');
  });
});
