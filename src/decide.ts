// The pure decision of one reconcile: what to do for each target of a source, and whether the
// source's digest may be recorded. The reconciler fetches the inputs and carries the plan out.
import { isOwnDigest, selectKeyDigests } from './digest.js';
import type { ObjectRef } from './mapping/targets.js';
import { type Gate, gate, type GateTarget, type Outcome, type RolloutFacts, type Stage, wakeAt } from './rollout/gate.js';
import { FLUX_WATCH_LABEL, type ReleaseObject } from './sources/objects.js';

export type TargetAction =
  /** The recorded digest equals the content: nothing to do. */
  | 'current'
  /** Ask helm-controller to reconcile (and force an upgrade, in force mode). */
  | 'trigger'
  /** First sight and the release is newer than the content: nothing to do but record. */
  | 'adopt'
  /** Already triggered for this very digest by this process; waiting on other targets. */
  | 'done'
  /** The release reads only keys (valuesFrom) whose content did not change. */
  | 'unchanged'
  /** helm-controller's own watch (reconcile.fluxcd.io/watch) reconciles this release for this source. */
  | 'deferred'
  /** Outside this instance's --helmrelease-label-selector: another instance's, or nobody's. */
  | 'outOfScope'
  /** The HelmRelease does not exist (yet): retry with backoff, and when it appears. */
  | 'missing'
  /** spec.suspend: wait for it to be resumed. */
  | 'suspended'
  /** `<domain>/trigger: disabled` on the release or the source: wait for it to be removed. */
  | 'paused'
  /** Outside its trigger windows, or its wave or windows cannot be read (fail closed). */
  | 'held'
  /** A lower wave has not finished rolling this content out. */
  | 'gated'
  /** A release of a lower wave failed with this content: the rollout stops until a fix or a resume. */
  | 'halted';

/** What an action means, in one place: the controller, its log lines and `hrto explain` read it. */
export interface ActionFacts {
  /** The target needs nothing more for this content: the digest may be recorded. */
  handled: boolean;
  /** Something is still to happen for it (explain's PENDING column). */
  pending: boolean;
  /** One line for explain. */
  reason: string;
  /** The reconciler's log line for targets waiting this way, one per kind of wait. */
  wait?: { level: 'info' | 'debug'; msg: string };
}

const LEFT_TO_FLUX = `left to helm-controller: the source is labeled ${FLUX_WATCH_LABEL}=Enabled`;

export const ACTIONS: Readonly<Record<TargetAction, ActionFacts>> = {
  current: { handled: true, pending: false, reason: 'up to date: the recorded digest is the content' },
  trigger: { handled: false, pending: true, reason: 'trigger pending: the content changed since the recorded digest' },
  adopt: { handled: true, pending: true, reason: 'adoption pending: first sight, and the release is newer than the content' },
  done: { handled: true, pending: false, reason: 'triggered for this content' },
  unchanged: {
    handled: true,
    pending: false,
    reason: 'no trigger: the keys it reads did not change',
    wait: { level: 'debug', msg: 'the keys these releases read are unchanged' },
  },
  deferred: {
    handled: true,
    pending: false,
    reason: LEFT_TO_FLUX,
    wait: { level: 'info', msg: LEFT_TO_FLUX },
  },
  outOfScope: {
    handled: true,
    pending: false,
    reason: 'not handled here: outside --helmrelease-label-selector',
    wait: { level: 'debug', msg: 'target HelmReleases are outside --helmrelease-label-selector; not triggered here' },
  },
  missing: { handled: false, pending: true, reason: 'waiting: the HelmRelease does not exist' },
  suspended: {
    handled: false,
    pending: true,
    reason: 'waiting: the HelmRelease is suspended',
    wait: { level: 'info', msg: 'target HelmReleases are suspended; will trigger them when resumed' },
  },
  paused: {
    handled: false,
    pending: true,
    reason: 'paused: trigger annotation set to disabled on the release or the source',
    wait: { level: 'info', msg: 'paused by the trigger annotation set to disabled; will trigger when it is removed' },
  },
  held: { handled: false, pending: true, reason: 'held: outside its trigger windows' },
  gated: { handled: false, pending: true, reason: 'waiting for a lower wave to be healthy with this content' },
  halted: { handled: false, pending: true, reason: 'halted: a release of a lower wave failed with this content' },
};

export interface TargetPlan {
  ref: ObjectRef;
  action: TargetAction;
  /** Its wave, when it has one. */
  wave?: number | undefined;
  /** Why a would-be trigger waits: held, gated or halted. */
  gate?: Exclude<Gate, { gate: 'open' }> | undefined;
  /** An operator let this content through at once (`rollout-now`): no window holds it, up to the patch. */
  bypass?: boolean | undefined;
  /** Its trigger's outcome is read (a plan step or a wave): the record says so, so that its status is kept. */
  tracked?: boolean | undefined;
  /** What came of its trigger for this content, when that gates a rollout. */
  outcome?: Outcome | undefined;
}

export interface Plan {
  /** The recorded digest equals the content's: nothing to do (every target is 'current'). */
  upToDate: boolean;
  /** No digest of this edition is recorded (new source, first start, an older operator's digest). */
  firstSight: boolean;
  targets: TargetPlan[];
  /** Every target is handled (triggers have landed), so the digest can be recorded now. */
  record: boolean;
  /** The key digests to record with it: every key a target reads through valuesFrom. */
  keyDigests: Record<string, string>;
  /** Waved releases that cannot act (missing, suspended, paused) and so do not hold the waves above them. */
  skipped: TargetPlan[];
  /** When to decide again without an event: a window opening, a triggered release's health deadline. */
  wakeAt: number | undefined;
  /** The source's rollout plan's steps (a target's wave is its step's index). */
  stages?: readonly Stage[] | undefined;
  /** The source's rollout plan cannot be read: every would-be trigger is held with this message. */
  planError?: string | undefined;
}

export interface TargetInput {
  ref: ObjectRef;
  release: ReleaseObject | undefined;
  triggeredDigest: string | undefined;
  /** The digest prefix of this source's content that hrto's last trigger of the release carried. */
  carried?: string | undefined;
  /** The keys the release reads through valuesFrom; undefined: the whole content counts. */
  valuesKeys?: readonly string[] | undefined;
  /** Left to helm-controller's own watch of this source. */
  fluxWatches?: boolean | undefined;
  /** Matches this instance's HelmRelease selector (default: every release does). */
  inScope?: boolean | undefined;
  /** Its wave, windows and the outcome of a trigger for this content; none: today's behaviour. */
  rollout?: RolloutFacts | undefined;
}

export interface DecideInput {
  digest: string;
  recorded: string | undefined;
  /** Digest of each key of the content. */
  keyDigests: Readonly<Record<string, string>>;
  /** The key digests recorded with the last digest. */
  recordedKeyDigests: Readonly<Record<string, string>>;
  contentChangedAt: string | undefined;
  /** The source is annotated `<domain>/trigger: disabled`. */
  sourcePaused?: boolean | undefined;
  /** `rollout-now` on the source names this content: windows and waves do not hold it. */
  rolloutNow?: boolean | undefined;
  /** `rollout-resume` on the source names this content: failed releases no longer halt it. */
  resumed?: boolean | undefined;
  /** The source's rollout plan's steps, when it has one. */
  stages?: readonly Stage[] | undefined;
  targets: readonly TargetInput[];
}

/**
 * Whether content first seen now may be newer than what the release rendered. Unknown times count
 * as newer: a spurious upgrade is recoverable, a lost change is not.
 */
export function contentNewerThanRelease(contentChangedAt: string | undefined, release: ReleaseObject): boolean {
  if (!release.lastRelease) return false;
  const changed = contentChangedAt ? Date.parse(contentChangedAt) : NaN;
  const deployed = Date.parse(release.lastRelease.deployedAt);
  if (Number.isNaN(changed) || Number.isNaN(deployed)) return true;
  // Timestamps have one-second resolution: a tie may be a change the release did not see.
  return changed >= deployed;
}

/** For a release reading some keys: whether they changed, or were never recorded (first sight). */
function keysState(input: DecideInput, keys: readonly string[]): 'changed' | 'unchanged' | 'unrecorded' {
  const now = selectKeyDigests(input.keyDigests, keys);
  if (keys.some((k) => input.recordedKeyDigests[k] === undefined)) return 'unrecorded';
  return keys.every((k) => input.recordedKeyDigests[k] === now[k]) ? 'unchanged' : 'changed';
}

/** What a target needs for this content, before windows and waves are asked. */
function baseAction(input: DecideInput, firstSight: boolean, t: TargetInput): TargetAction {
  const { release, triggeredDigest, valuesKeys, fluxWatches, inScope } = t;
  if (!release) return 'missing';
  if (inScope === false) return 'outOfScope';
  if (release.suspended) return 'suspended';
  if (input.sourcePaused || release.paused) return 'paused';
  if (triggeredDigest === input.digest) return 'done';
  // Back at the recorded content (a revert after a halt): only releases a trigger gave another
  // content need it again.
  if (input.recorded === input.digest) return carriedOther(input, t) ? 'trigger' : 'current';
  const keys = firstSight || !valuesKeys ? undefined : keysState(input, valuesKeys);
  if (keys === 'unchanged') return 'unchanged';
  if (fluxWatches) return 'deferred';
  if ((firstSight || keys === 'unrecorded') && !contentNewerThanRelease(input.contentChangedAt, release)) return 'adopt';
  return 'trigger';
}

const CANNOT_ACT: ReadonlySet<TargetAction> = new Set(['missing', 'suspended', 'paused']);

/** hrto's last trigger of the release carried another content of this source than the one it has now. */
const carriedOther = (input: DecideInput, t: TargetInput): boolean => t.carried !== undefined && !input.digest.startsWith(t.carried);

export function decide(input: DecideInput): Plan {
  const readKeys = new Set(input.targets.flatMap((t) => t.valuesKeys ?? []));
  const keyDigests = selectKeyDigests(input.keyDigests, readKeys);
  if (input.recorded === input.digest && !input.targets.some((t) => t.release && carriedOther(input, t))) {
    const targets = input.targets.map(({ ref }): TargetPlan => ({ ref, action: 'current' }));
    return { upToDate: true, firstSight: false, targets, record: false, keyDigests, skipped: [], wakeAt: undefined, stages: input.stages };
  }
  const firstSight = !isOwnDigest(input.recorded);
  const base = input.targets.map((t) => baseAction(input, firstSight, t));
  const { targets, skipped, wake } = applyGates(input, base);
  // (Back at the recorded content, there is nothing new to record.)
  const record = input.recorded !== input.digest && targets.every((t) => ACTIONS[t.action].handled);
  return { upToDate: false, firstSight, targets, record, keyDigests, skipped, wakeAt: wake, stages: input.stages };
}

/** Windows and waves turn would-be triggers into held, gated or halted ones. */
function applyGates(input: DecideInput, base: readonly TargetAction[]): { targets: TargetPlan[]; skipped: TargetPlan[]; wake: number | undefined } {
  // No window, wave or record anywhere: today's behaviour, without asking the gate.
  if (!input.rolloutNow && input.targets.every((t) => t.rollout === undefined)) {
    return { targets: input.targets.map((t, i) => ({ ref: t.ref, action: base[i]! })), skipped: [], wake: undefined };
  }
  // Releases left to helm-controller's own watch are not hrto's to order: never part of a wave.
  const gateTargets = input.targets.map(
    (t, i): GateTarget => ({
      ref: t.ref,
      would: base[i] === 'trigger' ? 'trigger' : base[i] === 'done' ? 'triggered' : 'skip',
      facts: base[i] === 'deferred' ? {} : (t.rollout ?? {}),
    }),
  );
  const gates = gate({ targets: gateTargets, now: input.rolloutNow === true, resumed: input.resumed === true, stages: input.stages });
  const targets = input.targets.map((t, i): TargetPlan => {
    const g = gates[i]!;
    const wave = gateTargets[i]!.facts.wave;
    const outcome = t.rollout?.outcome;
    if (g.gate === 'open') return { ref: t.ref, action: base[i]!, wave, bypass: input.rolloutNow === true || t.rollout?.now === true, tracked: wave !== undefined, outcome };
    return { ref: t.ref, action: g.gate, wave, gate: g, outcome };
  });
  const highest = Math.max(...targets.map((t) => t.wave ?? -Infinity));
  const skipped = targets.filter((t) => t.wave !== undefined && t.wave < highest && CANNOT_ACT.has(t.action));
  return { targets, skipped, wake: wakeAt(gateTargets, gates) };
}
