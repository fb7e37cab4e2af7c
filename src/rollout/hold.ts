// The hold of a change, pure: helm-controller composes a release's values from its sources at every
// reconcile, so a change hrto must not let through yet (a closed window, a lower wave not done, a
// halted rollout, no slot under --max-upgrades-in-flight) is held by suspending the release, and
// released by the trigger's own patch (suspend off, requestedAt, forceAt). The state lives on the
// object as hrto's mark (`<domain>/suspended-by`):
//
//   none --change held--> held (spec.suspend true, mark: why, which contents, since)
//   held --trigger--> none (one patch)          held --reason gone, no trigger due--> none (lift)
//   held --someone set suspend false--> overridden (mark kept with who: never suspended again for
//   those contents)                              overridden --a newer content held--> held
//
// A release suspended without hrto's mark is a person's: hrto neither lifts nor holds it.
import { type Gate } from './gate.js';
import { jsonObject, stringEntries } from './health.js';

export const HOLDER = 'helmrelease-trigger-operator';

export type HoldReason = 'window' | 'wave' | 'step' | 'max-update' | 'unselected' | 'halted' | 'invalid' | 'in-flight';

export interface HoldMark {
  /** Always HOLDER: the mark names who suspended the release. */
  by: string;
  /** Why it was first held (the reason at suspension; explain reads the live one). */
  reason: HoldReason;
  /** When it was suspended (RFC 3339). */
  since: string;
  /** The newest history version when it was suspended: a newer one came without hrto's trigger. */
  v: number;
  /** status.lastAttemptedConfigDigest (prefix) when it was suspended: another one is an attempt without hrto's trigger. */
  a?: string | undefined;
  /** The held contents: `Kind/namespace/name` -> digest prefix. */
  src: Record<string, string>;
  /** Set when someone else lifted the suspension: the field manager that did. */
  over?: string | undefined;
}

/** The mark in an annotation value; anything else (absent, not JSON, not hrto's) is no mark. */
export function parseHoldMark(value: string | undefined): HoldMark | undefined {
  const raw = jsonObject(value);
  if (!raw) return undefined;
  const { by, reason, since, v, a, src, over } = raw;
  if (by !== HOLDER || typeof reason !== 'string' || typeof since !== 'string' || typeof v !== 'number' || !Number.isSafeInteger(v)) return undefined;
  const sources = stringEntries(src);
  return sources && { by, reason: reason as HoldReason, since, v, ...(typeof a === 'string' ? { a } : {}), src: sources, ...(typeof over === 'string' ? { over } : {}) };
}

export function encodeHoldMark(m: HoldMark): string {
  return JSON.stringify({ by: m.by, reason: m.reason, since: m.since, v: m.v, ...(m.a !== undefined ? { a: m.a } : {}), src: m.src, ...(m.over !== undefined ? { over: m.over } : {}) });
}

/**
 * Reasons from the strictest: a halt outlasts an unreadable annotation, which outlasts a plan's
 * order, then a window, then a slot. A release several sources hold is held for the strictest.
 */
const STRICTNESS: readonly HoldReason[] = ['halted', 'invalid', 'unselected', 'step', 'wave', 'max-update', 'window', 'in-flight'];

/** The strictest of the reasons a release is held for; undefined: none holds it. */
export function strictest(reasons: Iterable<HoldReason>): HoldReason | undefined {
  let best: HoldReason | undefined;
  for (const r of reasons) if (best === undefined || STRICTNESS.indexOf(r) < STRICTNESS.indexOf(best)) best = r;
  return best;
}

/** The reason a gate holds a would-be trigger, as the mark names it. */
export function holdReason(g: Exclude<Gate, { gate: 'open' }>): HoldReason {
  if (g.gate === 'held') return g.by;
  if (g.gate === 'halted') return 'halted';
  if (g.limit !== undefined) return 'max-update';
  return g.stage === undefined ? 'wave' : 'step';
}

/** The state of a release as the hold sees it. */
export type HoldState =
  /** Not suspended, no mark. */
  | 'free'
  /** Suspended by hrto. */
  | 'held'
  /** hrto's suspension was lifted by someone else (the mark still says held): an override to record. */
  | 'lifted'
  /** An override recorded: hrto does not suspend again for the marked contents. */
  | 'overridden'
  /** Suspended by someone else: not hrto's to hold or lift. */
  | 'person';

export function holdState(suspend: boolean, mark: HoldMark | undefined): HoldState {
  if (!mark) return suspend ? 'person' : 'free';
  if (mark.over !== undefined) return suspend ? 'person' : 'overridden';
  return suspend ? 'held' : 'lifted';
}

export interface HoldInput {
  /** spec.suspend. */
  suspend: boolean;
  mark: HoldMark | undefined;
  /** The live holds: source -> the content it holds back and why (empty: nothing to hold). */
  holds: ReadonlyMap<string, { digest: string; reason: HoldReason }>;
  /** A source wants to trigger the release now: its trigger lifts the hold, so nothing else may. */
  triggerDue: boolean;
  /** The release's newest history version. */
  version: number;
  /** status.lastAttemptedConfigDigest (prefix). */
  attempted: string | undefined;
  /** The manager that last wrote spec.suspend (for an override). */
  suspendManager: string | undefined;
  now: string;
  /** Digest prefix length kept in the mark. */
  short: (digest: string) => string;
}

/** The one write a hold needs next, or none. */
export type HoldStep =
  | { step: 'none' }
  /** spec.suspend true and the mark. */
  | { step: 'suspend'; mark: HoldMark }
  /** The mark alone: other contents held now (a newer change, a source added or gone). */
  | { step: 'remark'; mark: HoldMark }
  /** spec.suspend false and no mark: nothing holds it and no trigger is due. */
  | { step: 'lift' }
  /** Someone lifted hrto's suspension: record who, and never suspend again for these contents. */
  | { step: 'override'; mark: HoldMark; by: string }
  /** An override whose contents no source holds any more: the mark goes. */
  | { step: 'unmark' }
  /**
   * helm-controller applied the held contents without hrto's trigger (an interval reconcile begun
   * before the suspension, or after someone lifted it): the hold is over, and what came of it is
   * that wave's result (recorded as if triggered, so a failure still halts).
   */
  | { step: 'slipped'; mark: HoldMark };

function heldContents(input: HoldInput): Record<string, string> {
  const src: Record<string, string> = {};
  for (const [source, { digest }] of [...input.holds].sort(([a], [b]) => a.localeCompare(b))) src[source] = input.short(digest);
  return src;
}

const sameContents = (a: Record<string, string>, b: Record<string, string>): boolean => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
};

/** The next step from the release's state, the live holds and whether a trigger is due. */
export function nextHoldStep(input: HoldInput): HoldStep {
  const { mark } = input;
  const state = holdState(input.suspend, mark);
  const first = strictest([...input.holds.values()].map((h) => h.reason));
  const newMark = (src: Record<string, string>): HoldMark => ({
    by: HOLDER,
    reason: first!,
    since: input.now,
    v: input.version,
    ...(input.attempted !== undefined ? { a: input.attempted } : {}),
    src,
  });
  // A new revision, or an attempt with other values, since the suspension: the held change got through.
  const slipped = mark !== undefined && (input.version > mark.v || (mark.a !== undefined && input.attempted !== undefined && input.attempted !== mark.a));
  switch (state) {
    case 'person':
      return { step: 'none' };
    case 'lifted':
      return { step: 'override', mark: { ...mark!, over: input.suspendManager ?? 'unknown' }, by: input.suspendManager ?? 'unknown' };
    case 'free':
      return first ? { step: 'suspend', mark: newMark(heldContents(input)) } : { step: 'none' };
    case 'overridden': {
      if (slipped) return { step: 'slipped', mark: mark };
      const src = heldContents(input);
      // A content the override did not cover (a newer change) is held again.
      const uncovered = Object.entries(src).some(([s, d]) => mark!.src[s] !== d);
      if (uncovered) return { step: 'suspend', mark: newMark(src) };
      return first ? { step: 'none' } : { step: 'unmark' };
    }
    case 'held': {
      if (slipped) return { step: 'slipped', mark: mark };
      if (!first) return input.triggerDue ? { step: 'none' } : { step: 'lift' };
      const src = heldContents(input);
      return sameContents(src, mark!.src) ? { step: 'none' } : { step: 'remark', mark: { ...mark!, src } };
    }
  }
}

/**
 * Whether a source's wish for a release (hold this content, or not) differs from the release's mark,
 * so its hold needs a look. Cheap enough for every target of every source reconcile.
 */
export function holdStale(suspend: boolean, markValue: string | undefined, source: string, shortDigest: string, held: boolean): boolean {
  if (markValue === undefined) return held;
  const mark = parseHoldMark(markValue);
  if (!mark) return held;
  if (!held) return source in mark.src;
  return holdState(suspend, mark) !== 'held' || mark.src[source] !== shortDigest;
}

/** The patch of a step (merge patch; resourceVersion guards against a concurrent write). */
export interface HoldPatch {
  metadata: { resourceVersion: string; annotations: Record<string, string | null> };
  spec?: { suspend: boolean };
}

export function holdPatch(step: Exclude<HoldStep, { step: 'none' | 'slipped' }>, annotation: string, resourceVersion: string): HoldPatch {
  const metadata = (value: string | null) => ({ resourceVersion, annotations: { [annotation]: value } });
  switch (step.step) {
    case 'suspend':
      return { metadata: metadata(encodeHoldMark(step.mark)), spec: { suspend: true } };
    case 'remark':
    case 'override':
      return { metadata: metadata(encodeHoldMark(step.mark)) };
    case 'lift':
      return { metadata: metadata(null), spec: { suspend: false } };
    case 'unmark':
      return { metadata: metadata(null) };
  }
}

/** What a trigger's patch adds to release a hold: suspend off when hrto's, and the mark gone. */
export function releaseFields(suspend: boolean, mark: HoldMark | undefined, annotation: string): { spec?: { suspend: false }; annotations: Record<string, null> } | undefined {
  const state = holdState(suspend, mark);
  if (state === 'held') return { spec: { suspend: false }, annotations: { [annotation]: null } };
  if (state === 'overridden' || state === 'lifted') return { annotations: { [annotation]: null } };
  return undefined;
}
