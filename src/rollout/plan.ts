// A source's rollout plan (`<domain>/rollout-plan`), pure: steps that pick, among the releases the
// source already targets, releases by a label selector (the ring labels a hub template puts on each
// cluster's HelmRelease), how many of a step's releases may upgrade at once (maxUpdate) and how long
// they must stay healthy before the next step goes (bake). A release no step selects goes last, or,
// with `"unselected": "never"`, is held until a step selects it. The first step that selects a
// release is its step. Anything unreadable fails closed: the source's changes are held.
import * as z from 'zod/mini';
import { formatDuration, parseGoDuration } from '../duration.js';
import { type LabelSelector, parseSelector, SelectorError } from '../selector.js';

export type MaxUpdate = { count: number } | { percent: number };

export interface PlanStep {
  /** Its name (default `step N`, 1-based), for explain, logs and Events. */
  name: string;
  selector: LabelSelector;
  maxUpdate?: MaxUpdate | undefined;
  /** How long the step's releases must stay healthy after their upgrade (0: none). */
  bakeMs: number;
}

export interface RolloutPlan {
  steps: readonly PlanStep[];
  /** Releases no step selects: after the last step, or never (held). */
  unselected: 'last' | 'never';
}

export class PlanError extends Error {
  override readonly name = 'PlanError';
}

/** The most steps a plan may have: a ring is a handful of clusters' labels, not one per cluster. */
export const MAX_STEPS = 32;

const EXAMPLE = '{"steps": [{"name": "canary", "selector": "ring=canary", "bake": "10m"}, {"selector": "ring=eu", "maxUpdate": "25%"}]}';

const COUNT = /^[1-9][0-9]{0,8}$/;
const PERCENT = /^([1-9][0-9]?|100)%$/;

function readMaxUpdate(value: number | string): { value: MaxUpdate } | { problem: string } {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? { value: { count: value } } : { problem: `maxUpdate must be a positive integer or a percentage such as "25%", got ${value}` };
  if (COUNT.test(value)) return { value: { count: Number(value) } };
  if (PERCENT.test(value)) return { value: { percent: Number(value.slice(0, -1)) } };
  return { problem: `maxUpdate must be a positive integer or a percentage from 1% to 100%, got "${value.slice(0, 32)}"` };
}

function readBake(value: string): { value: number } | { problem: string } {
  try {
    const ms = parseGoDuration(value);
    if (ms >= 0 && Number.isFinite(ms)) return { value: ms };
  } catch {
    // reported below
  }
  return { problem: `bake must be a Go duration such as 10m or 1h, got "${value.slice(0, 32)}"` };
}

function readSelectorText(value: string): { value: LabelSelector } | { problem: string } {
  if (value.trim() === '') return { problem: 'selector is empty: a step selects releases by their labels, e.g. "ring=canary"' };
  try {
    return { value: parseSelector(value) };
  } catch (err) {
    if (err instanceof SelectorError) return { problem: `selector "${value.slice(0, 64)}": ${err.message}` };
    throw err;
  }
}

const checked = <I, T>(schema: z.ZodMiniType<I>, read: (value: I) => { value: T } | { problem: string }) =>
  z.pipe(
    schema,
    z.transform((value: I, ctx) => {
      const result = read(value);
      if ('value' in result) return result.value;
      ctx.issues.push({ code: 'custom', message: result.problem, input: value });
      return z.NEVER;
    }),
  );

const StepSchema = z.strictObject({
  name: z.optional(z.string()),
  selector: checked(z.string(), readSelectorText),
  maxUpdate: z.optional(checked(z.union([z.number(), z.string()]), readMaxUpdate)),
  bake: z.optional(checked(z.string(), readBake)),
});

const PlanSchema = z.strictObject({
  steps: z.array(StepSchema),
  unselected: z.optional(z.enum(['last', 'never'])),
});

function problemText(issue: z.core.$ZodIssue): string {
  // ['steps', 0, 'bake'] -> 'step 1 bake'.
  const path = issue.path.filter((p, i) => !(p === 'steps' && typeof issue.path[i + 1] === 'number'));
  const where = path.length > 0 ? `${path.map((p) => (typeof p === 'number' ? `step ${p + 1}` : String(p))).join(' ')}: ` : '';
  if (issue.code === 'unrecognized_keys') return `${where}unknown field${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_value') return `${where}expected "last" or "never"`;
  if (issue.code === 'invalid_type') return `${where}expected ${issue.expected}`;
  return `${where}${issue.message}`;
}

/** Parsed plans by their text: every reconcile of a source reads its plan, and it rarely changes. */
const parses = new Map<string, RolloutPlan | PlanError>();
const MAX_PARSES = 256;

/** The plan in an annotation value; throws a PlanError naming the annotation and every problem. */
export function parsePlan(value: string, annotation: string): RolloutPlan {
  let parsed = parses.get(value);
  if (parsed === undefined) {
    parsed = read(value, annotation);
    if (parses.size >= MAX_PARSES) parses.delete(parses.keys().next().value!);
    parses.set(value, parsed);
  }
  if (parsed instanceof PlanError) throw parsed;
  return parsed;
}

function read(value: string, annotation: string): RolloutPlan | PlanError {
  const fail = (problems: string): PlanError => new PlanError(`${annotation}: ${problems}`);
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (err) {
    return fail(`not JSON (${(err as Error).message}); expected e.g. ${EXAMPLE}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`expected a JSON object such as ${EXAMPLE}`);
  const result = PlanSchema.safeParse(raw);
  if (!result.success) return fail(result.error.issues.map(problemText).join('; '));
  const { steps, unselected = 'last' } = result.data;
  if (steps.length === 0) return fail('no steps: a plan needs at least one step');
  if (steps.length > MAX_STEPS) return fail(`${steps.length} steps, at most ${MAX_STEPS}`);
  const names = steps.map((s, i) => s.name?.trim() || `step ${i + 1}`);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) return fail(`two steps are named "${twice}"`);
  return {
    steps: steps.map((s, i) => ({ name: names[i]!, selector: s.selector, maxUpdate: s.maxUpdate, bakeMs: s.bake ?? 0 })),
    unselected,
  };
}

/** What the plan makes of one release: its step (an index; steps.length for an unselected release going last), or never. */
export function stepOf(plan: RolloutPlan, labels: Readonly<Record<string, string>>): number | 'never' {
  const i = plan.steps.findIndex((s) => s.selector.matches(labels));
  if (i >= 0) return i;
  return plan.unselected === 'last' ? plan.steps.length : 'never';
}

/** The name of a step index, the one after the last being the unselected releases'. */
export const stepName = (plan: RolloutPlan, index: number): string => plan.steps[index]?.name ?? 'unselected';

/** How many of a step's `members` releases may upgrade at once: a percentage is rounded down, but never below one. */
export function updateLimit(max: MaxUpdate | undefined, members: number): number {
  if (max === undefined) return Infinity;
  if ('count' in max) return max.count;
  return Math.max(1, Math.floor((members * max.percent) / 100));
}

/** One line for explain and the docs' examples: `canary (ring=canary, bake 10m)`. */
export function describeStep(step: PlanStep): string {
  const parts = [step.selector.text];
  if (step.maxUpdate) parts.push(`maxUpdate ${'count' in step.maxUpdate ? step.maxUpdate.count : `${step.maxUpdate.percent}%`}`);
  if (step.bakeMs > 0) parts.push(`bake ${formatDuration(step.bakeMs)}`);
  return `${step.name} (${parts.join(', ')})`;
}
