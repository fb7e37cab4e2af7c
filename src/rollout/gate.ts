// The rollout gate of one source change, pure: given each target's would-be action and its rollout
// facts (wave, window, what hrto's last trigger of it became), which of the would-be triggers may go
// now, which are held by a window, which wait for a lower wave, and whether a failure halted the
// rollout. helm-controller's atomic release loop is the model: advance while healthy, stop at the
// first failure, and let a new change (or an explicit resume) start again.
import { type ObjectRef, refKey } from '../mapping/targets.js';
import { jsonObject } from './health.js';
import { type MaxUpdate, updateLimit } from './plan.js';

/** What hrto's trigger of a release for this content became, read from helm-controller's status. */
export type Outcome =
  | { state: 'progressing'; deadline: number }
  | { state: 'succeeded' }
  /** A plan step's release upgraded and healthy, staying so until `until` before its step is done. */
  | { state: 'baking'; until: number }
  | { state: 'failed'; reason: string; message: string };

export interface RolloutFacts {
  /** The release's wave; undefined: not waved (triggered at once, never gating). */
  wave?: number | undefined;
  /** The release's wave or windows cannot be read: held, never triggered at a time it may forbid. */
  invalid?: string | undefined;
  /** Its window: open, or closed until opensAt (undefined: no future opening). */
  window?: { open: true } | { open: false; opensAt: number | undefined } | undefined;
  /** `rollout-now` on the release names this content. */
  now?: boolean | undefined;
  /** Triggered for this content already: what came of it. */
  outcome?: Outcome | undefined;
  /** No step of the source's plan selects it, and the plan says such releases never go. */
  unselected?: boolean | undefined;
  /** Its trigger for this content is asked for already (waiting to be sent): it counts against maxUpdate. */
  requested?: boolean | undefined;
}

/** A step of a source's rollout plan as the gate sees it: the wave numbers are the step indexes. */
export interface Stage {
  name: string;
  maxUpdate?: MaxUpdate | undefined;
}

/** How a lower-wave target stands for the waves above it. */
type Standing = 'passed' | 'pending' | { failed: { ref: ObjectRef; reason: string; message: string } };

export type Gate =
  | { gate: 'open' }
  | { gate: 'held'; by: 'window'; opensAt: number | undefined }
  | { gate: 'held'; by: 'invalid'; message: string }
  | { gate: 'held'; by: 'unselected' }
  | {
      gate: 'gated';
      wave: number;
      waitingFor: ObjectRef[];
      /** The plan step's name (the wave is its index). */
      stage?: string | undefined;
      /** Waiting for a slot: the step's maxUpdate, all taken by waitingFor. */
      limit?: number | undefined;
      /** Every release waited for is baking: the step is done then, if they stay healthy. */
      bakingUntil?: number | undefined;
    }
  | { gate: 'halted'; wave: number; failed: { ref: ObjectRef; reason: string; message: string }; stage?: string | undefined };

export interface GateTarget {
  ref: ObjectRef;
  /** 'trigger': would be triggered now; 'triggered': already triggered for this content; 'skip': cannot act or is not part of the rollout. */
  would: 'trigger' | 'triggered' | 'skip';
  facts: RolloutFacts;
}

export interface GateInput {
  targets: readonly GateTarget[];
  /** `rollout-now` on the source names this content: every target goes at once. */
  now: boolean;
  /** `rollout-resume` on the source names this content: failed releases count as passed. */
  resumed: boolean;
  /** The source's rollout plan: wave i is its step i (one more for the releases no step selects). */
  stages?: readonly Stage[] | undefined;
}

function standing(t: GateTarget, resumed: boolean): Standing {
  if (t.would === 'skip') return 'passed';
  if (t.would === 'trigger') return 'pending';
  const outcome = t.facts.outcome;
  if (!outcome || outcome.state === 'progressing' || outcome.state === 'baking') return 'pending';
  if (outcome.state === 'failed' && !resumed) return { failed: { ref: t.ref, reason: outcome.reason, message: outcome.message } };
  return 'passed';
}

const windowClosed = (t: GateTarget): boolean => t.facts.window !== undefined && !t.facts.window.open;

/** Still upgrading: triggered (or asked to be) and not healthy yet. It holds a maxUpdate slot. */
const upgrading = (t: GateTarget): boolean =>
  (t.would === 'triggered' && (t.facts.outcome === undefined || t.facts.outcome.state === 'progressing')) || (t.would === 'trigger' && t.facts.requested === true);

/**
 * The would-be triggers of the wave rolling out now that its maxUpdate leaves no slot for: the
 * ones asked for already keep theirs, the others take the free slots in name order.
 */
function overLimit(members: readonly GateTarget[], stage: Stage | undefined, wave: number): Map<GateTarget, Gate> {
  const over = new Map<GateTarget, Gate>();
  const limit = updateLimit(stage?.maxUpdate, members.filter((t) => t.would !== 'skip').length);
  if (limit === Infinity) return over;
  const busy = members.filter(upgrading);
  const candidates = members.filter((t) => t.would === 'trigger' && !t.facts.requested && !t.facts.now && !windowClosed(t)).sort((a, b) => refKey(a.ref).localeCompare(refKey(b.ref)));
  const free = Math.max(0, limit - busy.length);
  for (const t of candidates.slice(free)) over.set(t, { gate: 'gated', wave, waitingFor: busy.map((b) => b.ref), stage: stage?.name, limit });
  return over;
}

/** The gate of every target, in input order. Only would-be triggers can be held, gated or halted. */
export function gate(input: GateInput): Gate[] {
  const waved = input.targets.filter((t) => t.facts.wave !== undefined && t.facts.invalid === undefined && !t.facts.unselected);
  const waves = [...new Set(waved.map((t) => t.facts.wave!))].sort((a, b) => a - b);
  // Per wave, the verdict for the waves above it: where the first failure or wait below stands.
  const below = new Map<number, Gate>();
  let limited = new Map<GateTarget, Gate>();
  let verdict: Gate = { gate: 'open' };
  for (const wave of waves) {
    below.set(wave, verdict);
    if (verdict.gate === 'halted') continue;
    const stage = input.stages?.[wave];
    const members = waved.filter((t) => t.facts.wave === wave);
    const standings = members.map((t) => standing(t, input.resumed));
    const failed = standings.find((s): s is Exclude<Standing, string> => typeof s === 'object');
    if (failed) verdict = { gate: 'halted', wave, failed: failed.failed, stage: stage?.name };
    else if (verdict.gate === 'open') {
      // The wave rolling out now: its maxUpdate applies.
      limited = overLimit(members, stage, wave);
      const waiting = members.filter((_, i) => standings[i] === 'pending');
      if (waiting.length > 0) {
        const untils = waiting.map((t) => (t.facts.outcome?.state === 'baking' ? t.facts.outcome.until : undefined));
        const baking = untils.every((u) => u !== undefined) ? Math.max(...(untils)) : undefined;
        verdict = { gate: 'gated', wave, waitingFor: waiting.map((t) => t.ref), stage: stage?.name, bakingUntil: baking };
      }
    }
  }
  return input.targets.map((t): Gate => {
    if (t.would !== 'trigger' || input.now || t.facts.now) return { gate: 'open' };
    if (t.facts.invalid !== undefined) return { gate: 'held', by: 'invalid', message: t.facts.invalid };
    if (t.facts.unselected) return { gate: 'held', by: 'unselected' };
    const over = limited.get(t);
    if (over) return over;
    const order = t.facts.wave === undefined ? { gate: 'open' as const } : below.get(t.facts.wave)!;
    // A halt or a wait below comes first: the window only matters once the wave may go.
    if (order.gate !== 'open') return order;
    if (t.facts.window && !t.facts.window.open) return { gate: 'held', by: 'window', opensAt: t.facts.window.opensAt };
    return { gate: 'open' };
  });
}

/** When to look again without any event: a window opening, or a trigger's health deadline. */
export function wakeAt(targets: readonly GateTarget[], gates: readonly Gate[]): number | undefined {
  const times: number[] = [];
  gates.forEach((g, i) => {
    if (g.gate === 'held' && g.by === 'window' && g.opensAt !== undefined) times.push(g.opensAt);
    const outcome = targets[i]!.facts.outcome;
    if (outcome?.state === 'progressing') times.push(outcome.deadline);
    if (outcome?.state === 'baking') times.push(outcome.until);
  });
  return times.length > 0 ? Math.min(...times) : undefined;
}

/** The first few releases waited for: a step may be a hundred clusters. */
function listed(refs: readonly ObjectRef[], max = 5): string {
  const shown = refs.slice(0, max).map(refKey).join(', ');
  return refs.length > max ? `${shown} and ${refs.length - max} more` : shown;
}

const when = (ms: number | undefined): string => (ms === undefined ? 'no window opens again' : new Date(ms).toISOString());

/**
 * What was reported of a source's current change, kept on the source so that a restart or a new
 * leader does not report it again (a halt re-reported would fire Flux's alerts once more).
 */
export interface Reported {
  /** The content (digest prefix) the reports are about: another content starts afresh. */
  d: string;
  /** Failed releases a halt was reported for. */
  halted: string[];
  /** Releases reported skipped by their wave (missing, suspended or paused). */
  skipped: string[];
}

export function parseReported(value: string | undefined, digest: string): Reported {
  const raw = jsonObject(value);
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  if (!raw || raw.d !== digest) return { d: digest, halted: [], skipped: [] };
  return { d: digest, halted: list(raw.halted), skipped: list(raw.skipped) };
}

export const encodeReported = (r: Reported): string => JSON.stringify({ d: r.d, halted: r.halted, skipped: r.skipped });

/** One line for a log, an Event or explain: why a would-be trigger waits. */
export function describeGate(g: Exclude<Gate, { gate: 'open' }>): string {
  switch (g.gate) {
    case 'held':
      if (g.by === 'window') return `held until ${when(g.opensAt)}: outside its trigger windows`;
      return g.by === 'unselected' ? 'held: no step of the rollout plan selects it, and the plan says unselected releases never go' : `held: ${g.message}`;
    case 'gated': {
      const waited = listed(g.waitingFor);
      if (g.limit !== undefined) return `waiting for a slot in step ${g.stage ?? g.wave} (maxUpdate ${g.limit}): upgrading ${waited}`;
      if (g.stage === undefined) return `waiting for wave ${g.wave} to be healthy with this content: ${waited}`;
      if (g.bakingUntil !== undefined) return `waiting for step ${g.stage} to bake until ${new Date(g.bakingUntil).toISOString()}: ${waited}`;
      return `waiting for step ${g.stage} to be healthy with this content: ${waited}`;
    }
    case 'halted':
      return `halted: ${g.stage === undefined ? `wave ${g.wave}` : `step ${g.stage}`}'s ${refKey(g.failed.ref)} failed (${g.failed.reason}${g.failed.message ? `: ${g.failed.message}` : ''})`;
  }
}
