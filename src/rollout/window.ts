// Trigger windows: when a source change may reach a release. The JSON of the `trigger-windows`
// annotation and of --trigger-windows, in Flux Operator's schedule shape
// ([{"cron": "0 8 * * 1-5", "timeZone": "Europe/Berlin", "window": "8h"}]), parsed once, and whether
// a window is open at a given instant. Pure: the caller passes the time.
import { Cron, CronPattern } from 'croner';
import * as z from 'zod/mini';
import { formatDuration, parseGoDuration } from '../duration.js';

/** One window: open for windowMs (elapsed time) from every time the cron fires in timeZone. */
export type Window = {
  readonly cron: string;
  readonly timeZone: string;
  readonly windowMs: number;
  /** e.g. `0 8 * * 1-5 Europe/Berlin 8h` */
  readonly text: string;
};

/** A window is open until `until` (exclusive; none: always open), or opens at `opensAt` (none: never). */
export type WindowState = { open: true; until?: number } | { open: false; opensAt: number | undefined };

/** Trigger windows that cannot be read; the message names where they came from and what is wrong. */
export class WindowError extends Error {
  override readonly name = 'WindowError';
  constructor(
    /** Where the JSON came from, e.g. the annotation or the flag. */
    readonly where: string,
    /** Every problem found, e.g. `trigger window 2: unknown time zone "Europe/Berln"`. */
    readonly problems: readonly string[],
  ) {
    super(`${where}: ${problems.join('; ')}`);
  }
}

const EXAMPLE = '[{"cron": "0 8 * * 1-5", "timeZone": "Europe/Berlin", "window": "8h"}]';

// Standard cron fields only: numbers, three-letter names, *, and lists, ranges and steps of them.
// Croner's extras (?, L, W, #, +, @nicknames, a year field, a date instead of a pattern) are refused.
const FIELD = /^(?:\*|\d+|[a-z]{3})(?:[-/,](?:\*|\d+|[a-z]{3}))*$/i;

/** The runs of a cron around the times last asked about: prev <= t < next for every t in [from, to). */
interface Runs {
  /** The latest run at or before (undefined: none). */
  prev: number | undefined;
  /** The first run after (undefined: none). */
  next: number | undefined;
  from: number;
  to: number;
}

/** A window's compiled cron, with what it last answered for `now` and for the end of a union. */
interface Compiled {
  cron: Cron;
  atNow: Runs;
  atEnd: Runs;
}

const unknownRuns = (): Runs => ({ prev: undefined, next: undefined, from: Infinity, to: -Infinity });

const compiled = new WeakMap<Window, Compiled>();

const MODE = '5-or-6-parts';

/** Croner's schedule of a pattern already checked by FIELD; throws on what croner rejects. */
function compile(cron: string, timeZone: string): Cron {
  // No callback: nothing is scheduled, the object only computes runs.
  return new Cron(cron, { timezone: timeZone, mode: MODE });
}

const normalize = (cron: string) => cron.trim().split(/\s+/).join(' ');

/** What is wrong with a normalized cron before croner reads it. */
function cronProblem(cron: string): string | undefined {
  const fields = cron.split(' ');
  if (fields.length !== 5 && fields.length !== 6) {
    return `cron "${cron}" has ${fields.length} field${fields.length === 1 ? '' : 's'}, expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)`;
  }
  const odd = fields.findIndex((f) => !FIELD.test(f));
  if (odd >= 0) {
    return `cron "${cron}": field ${odd + 1} "${fields[odd]}" is not standard cron (numbers, names, *, and - / , between them)`;
  }
  return undefined;
}

/** Zones found known (a few hundred at most); building a DateTimeFormat is slow. */
const knownZones = new Set<string>();

function knownZone(zone: string): boolean {
  if (knownZones.has(zone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    return false;
  }
  knownZones.add(zone);
  return true;
}

const text = (name: string) =>
  z.string({ error: (issue) => (issue.input === undefined ? `"${name}" is required` : `"${name}" must be a string, got ${describe(issue.input)}`) });

/** A string read by `read`: it returns the value, or the problem to report. */
const readText = <T>(name: string, read: (value: string) => { value: T } | { problem: string }) =>
  z.pipe(
    text(name),
    z.transform((value: string, ctx) => {
      const result = read(value);
      if ('value' in result) return result.value;
      ctx.issues.push({ code: 'custom', message: result.problem, input: value });
      return z.NEVER;
    }),
  );

function readCron(value: string): { value: string } | { problem: string } {
  const cron = normalize(value);
  let problem = cronProblem(cron);
  if (!problem) {
    try {
      new CronPattern(cron, undefined, { mode: MODE });
    } catch (err) {
      problem = `invalid cron "${cron}": ${(err as Error).message.replace(/^CronPattern: /, '')}`;
    }
  }
  return problem ? { problem } : { value: cron };
}

function readWindow(value: string): { value: number } | { problem: string } {
  let ms: number;
  try {
    ms = parseGoDuration(value);
  } catch {
    return { problem: `invalid window "${value}", expected a Go duration such as 30m or 8h` };
  }
  if (!(ms > 0) || !Number.isFinite(ms)) return { problem: `window must be a positive duration, got "${value}"` };
  return { value: ms };
}

// Go's time.LoadLocation("") is UTC too.
function readZone(value: string): { value: string } | { problem: string } {
  const zone = value.trim() === '' ? 'UTC' : value.trim();
  return knownZone(zone) ? { value: zone } : { problem: `unknown time zone "${zone}"` };
}

const WindowSchema = z.pipe(
  z.strictObject(
    {
      cron: readText('cron', readCron),
      timeZone: z.optional(readText('timeZone', readZone)),
      window: readText('window', readWindow),
    },
    {
      error: (issue) => {
        if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => `"${k}"`).join(', ')} (expected cron, timeZone, window)`;
        return `expected an object like ${EXAMPLE.slice(1, -1)}, got ${describe(issue.input)}`;
      },
    },
  ),
  z.transform(({ cron, timeZone = 'UTC', window }, ctx) => {
    // The pattern and the zone have been checked: this does not throw.
    const schedule = compile(cron, timeZone);
    // Without a year field a pattern that has no run after 1970 has none at all (e.g. "0 0 30 2 *").
    if (schedule.nextRun(new Date(0)) === null) {
      ctx.issues.push({ code: 'custom', message: `cron "${cron}" never fires`, path: ['cron'], input: cron });
      return z.NEVER;
    }
    const parsed: Window = { cron, timeZone, windowMs: window, text: `${cron} ${timeZone} ${formatDuration(window)}` };
    compiled.set(parsed, { cron: schedule, atNow: unknownRuns(), atEnd: unknownRuns() });
    return parsed;
  }),
);

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

/** What parseWindows made of the JSON texts it read last: the windows, or the problems. */
const parses = new Map<string, Window[] | readonly string[]>();
const MAX_PARSES = 256;
/** Longer texts are read each time rather than kept. */
const MAX_PARSE_KEY = 4096;

/**
 * The windows of a `trigger-windows` JSON array; '' and `[]` are none (always open). Throws a
 * WindowError naming `where`, the window (1-based) and every problem: all windows or none.
 * The same text parsed again gives the same Window objects (in a new array), so what windowState
 * remembers of them carries over from one reconcile to the next.
 */
export function parseWindows(json: string, where: string): Window[] {
  if (json.trim() === '') return [];
  let parsed = parses.get(json);
  if (parsed === undefined) {
    parsed = read(json);
    if (json.length <= MAX_PARSE_KEY) {
      if (parses.size >= MAX_PARSES) parses.delete(parses.keys().next().value!);
      parses.set(json, parsed);
    }
  }
  if (isProblems(parsed)) throw new WindowError(where, parsed);
  return [...parsed];
}

const isProblems = (parsed: Window[] | readonly string[]): parsed is readonly string[] => typeof parsed[0] === 'string';

function read(json: string): Window[] | readonly string[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    return [`not JSON (${(err as Error).message}); expected e.g. ${EXAMPLE}`];
  }
  if (!Array.isArray(raw)) return [`expected a JSON array of windows such as ${EXAMPLE}, got ${describe(raw)}`];
  const problems: string[] = [];
  const windows: Window[] = [];
  raw.forEach((item, i) => {
    const result = WindowSchema.safeParse(item);
    if (result.success) windows.push(Object.freeze(result.data));
    else for (const issue of result.error.issues) problems.push(`trigger window ${i + 1}: ${issue.message}`);
  });
  return problems.length > 0 ? problems : windows;
}

function compiledOf(w: Window): Compiled {
  let c = compiled.get(w);
  if (!c) {
    // A window built by hand rather than by parseWindows.
    let cron: Cron;
    try {
      const problem = cronProblem(normalize(w.cron));
      if (problem) throw new Error(problem);
      if (!knownZone(w.timeZone)) throw new Error(`unknown time zone "${w.timeZone}"`);
      cron = compile(normalize(w.cron), w.timeZone);
    } catch (err) {
      throw new WindowError(w.text, [(err as Error).message]);
    }
    c = { cron, atNow: unknownRuns(), atEnd: unknownRuns() };
    compiled.set(w, c);
  }
  return c;
}

/**
 * The latest run of c at or before t and the first after it, remembered in runs: the next call
 * for a time between the same two runs (every reconcile until the next run) asks croner nothing.
 */
function runsAround(c: Compiled, runs: Runs, t: number): Runs {
  if (t >= runs.from && t < runs.to) return runs;
  // previousRuns counts the runs strictly before its reference; runs fall on whole seconds.
  runs.prev = c.cron.previousRuns(1, new Date(Math.floor(t) + 1))[0]?.getTime();
  runs.next = c.cron.nextRun(new Date(t))?.getTime();
  runs.from = runs.prev ?? -Infinity;
  runs.to = runs.next ?? Infinity;
  return runs;
}

/** How many times `until` may be pushed on by a window starting before it ends. */
const MAX_CHAIN = 64;

/**
 * Whether `now` (epoch ms) is inside a window: some run s of a window's cron with s <= now <
 * s + windowMs. Open: `until` is the end of the union of that window and every window that starts
 * before or as it ends, chained (at most MAX_CHAIN links, after which the window may still be
 * open at `until`). No windows: always open. Closed: the next start of any window.
 */
export function windowState(windows: readonly Window[], now: number): WindowState {
  if (windows.length === 0) return { open: true };
  const all = windows.map((w) => {
    const c = compiledOf(w);
    const { prev, next } = runsAround(c, c.atNow, now);
    return { c, windowMs: w.windowMs, prev, next };
  });
  let until: number | undefined;
  let opensAt: number | undefined;
  for (const { windowMs, prev, next } of all) {
    if (prev !== undefined && now < prev + windowMs) until = Math.max(until ?? -Infinity, prev + windowMs);
    if (next !== undefined) opensAt = Math.min(opensAt ?? Infinity, next);
  }
  if (until === undefined) return { open: false, opensAt };
  for (let link = 0; link < MAX_CHAIN; link++) {
    const end: number = until;
    for (const { c, windowMs, next } of all) {
      // Its first start after now is past the end: nothing of it starts within the union.
      if (next === undefined || next > end) continue;
      const start = runsAround(c, c.atEnd, end).prev ?? next;
      until = Math.max(until, start + windowMs);
    }
    if (until === end) break;
  }
  return { open: true, until };
}
