// A release's rollout facts for one source change, from the cached release and hrto's record on it:
// its wave, whether its windows are open, whether an operator let this change through, and what
// came of a trigger for this content. Pure: the time comes in as `now`.
import { FLUX_WATCH_LABEL, type ReleaseObject } from '../sources/objects.js';
import type { RolloutFacts } from './gate.js';
import { parseRolloutRecord, readBake, readHealth, type RolloutRecord } from './health.js';
import { parseWindows, type Window, WindowError, windowState } from './window.js';

/** The digest prefix shown in Events and explain, and kept in the rollout record. */
export const SHORT_DIGEST = 'sha256:'.length + 12;
export const shortDigest = (digest: string): string => digest.slice(0, SHORT_DIGEST);

const CONTENT_REF = /^sha256:[0-9a-f]{12,64}$/;

/** Whether an operator's `rollout-now`/`rollout-resume` value names this content (12 hex digits at least). */
export function namesContent(value: string | undefined, digest: string): boolean {
  const ref = value?.trim();
  return ref !== undefined && CONTENT_REF.test(ref) && digest.startsWith(ref);
}

const WAVE = /^-?[0-9]{1,9}$/;

export class WaveError extends Error {
  override readonly name = 'WaveError';
}

export function parseWave(value: string, annotation: string): number {
  if (!WAVE.test(value.trim())) throw new WaveError(`${annotation}: "${value.slice(0, 64)}" is not an integer`);
  return Number(value.trim());
}

export interface FactsContext {
  /** Annotation names, for messages. */
  waveAnnotation: string;
  windowsAnnotation: string;
  /** --trigger-windows: for releases without their own annotation. */
  triggerWindows: readonly Window[];
  waveTimeoutMs: number;
}

/** hrto's last trigger of the release, when it carried this source's content. */
export function triggeredFor(release: ReleaseObject, source: string, digest: string): RolloutRecord | undefined {
  const record = parseRolloutRecord(release.rolloutRecord);
  const sent = record?.src[source];
  return sent !== undefined && digest.startsWith(sent) ? record : undefined;
}

/** The digest prefix of this source's content that hrto's last trigger of the release carried. */
export function carriedContent(release: ReleaseObject, source: string): string | undefined {
  return release.rolloutRecord === undefined ? undefined : parseRolloutRecord(release.rolloutRecord)?.src[source];
}

/** Whether a release has a wave or windows: what a source labeled for helm-controller's own watcher escapes. */
export function ordered(release: ReleaseObject, ctx: Pick<FactsContext, 'triggerWindows'>): boolean {
  return release.wave !== undefined || release.triggerWindows !== undefined || ctx.triggerWindows.length > 0;
}

/** Said of a waved or windowed release reading a source helm-controller watches itself. */
export const UNHOLDABLE = `helm-controller applies changes of a source labeled ${FLUX_WATCH_LABEL}=Enabled the moment they happen: its waves and windows cannot hold this source`;

/** A release's own windows (or --trigger-windows), or what is wrong with them. */
function ownWindows(release: ReleaseObject, ctx: FactsContext): readonly Window[] | { invalid: string } {
  try {
    return release.triggerWindows === undefined ? ctx.triggerWindows : parseWindows(release.triggerWindows, ctx.windowsAnnotation);
  } catch (err) {
    if (err instanceof WindowError) return { invalid: err.message };
    throw err;
  }
}

/** A release's own wave, or what is wrong with it. */
function ownWave(release: ReleaseObject, ctx: FactsContext): number | undefined | { invalid: string } {
  try {
    return release.wave === undefined ? undefined : parseWave(release.wave, ctx.waveAnnotation);
  } catch (err) {
    if (err instanceof WaveError) return { invalid: err.message };
    throw err;
  }
}

/** A trigger must not go now: the release's windows are all closed, or cannot be read (fail closed). */
export function windowsClosed(release: ReleaseObject, ctx: FactsContext, now: number): boolean {
  const windows = ownWindows(release, ctx);
  return 'invalid' in windows || (windows.length > 0 && !windowState(windows, now).open);
}

/** Where a source's rollout plan puts a release: its step (and that step's bake), never, or the plan cannot be read. */
export type Placement = { step: number; bakeMs: number } | { never: true } | { invalid: string };

/**
 * The facts, or undefined when none of it applies (today's behaviour, at no cost). `placement`: the
 * source has a rollout plan, which orders the release instead of its own wave.
 */
export function rolloutFacts(release: ReleaseObject, source: string, digest: string, ctx: FactsContext, now: number, placement?: Placement): RolloutFacts | undefined {
  if (!placement && release.wave === undefined && release.triggerWindows === undefined && ctx.triggerWindows.length === 0) return undefined;
  const facts: RolloutFacts = { now: namesContent(release.rolloutNow, digest) };
  const windows = ownWindows(release, ctx);
  // A plan orders the release instead of its wave: the wave is not read at all.
  const wave = placement ? undefined : ownWave(release, ctx);
  // Fail closed on the first thing that cannot be read.
  const invalid = (message: string): RolloutFacts => ({ ...facts, invalid: message });
  if (placement && 'invalid' in placement) return invalid(placement.invalid);
  if ('invalid' in windows) return invalid(windows.invalid);
  if (typeof wave === 'object') return invalid(wave.invalid);
  if (placement && 'never' in placement) facts.unselected = true;
  facts.wave = placement && 'step' in placement ? placement.step : wave;
  if (windows.length > 0) {
    const state = windowState(windows, now);
    facts.window = state.open ? { open: true } : state;
  }
  const record = triggeredFor(release, source, digest);
  // Only an ordered release's outcome gates anything (the status is cached for those alone).
  if (record && facts.wave !== undefined) {
    const health = readHealth(release, record, now, ctx.waveTimeoutMs);
    const baked = placement && 'step' in placement ? readBake(release, record, health, placement.bakeMs, now) : health;
    facts.outcome = baked.state === 'progressing' ? { state: 'progressing', deadline: Date.parse(record.at) + ctx.waveTimeoutMs } : baked;
  }
  return facts;
}

/** What a rollout decision reads of a release, so that a change of any of it wakes its sources. */
function rolloutView(r: ReleaseObject): string {
  const tracked = r.wave !== undefined || r.tracked === true;
  return JSON.stringify([
    r.wave,
    r.triggerWindows,
    r.rolloutNow,
    r.rolloutRecord,
    // The status matters only for the outcome of a recorded trigger.
    tracked ? [r.requestedAt, r.lastHandledReconcileAt, r.lastAttemptedConfigDigest, r.failures, r.newest, r.badVersion, r.conditions] : undefined,
  ]);
}

/** A release's rollout facts changed (its annotations, or the status of a recorded trigger). */
export function rolloutChanged(old: ReleaseObject, release: ReleaseObject): boolean {
  // Every trigger leaves a record, but only a waved release's outcome gates its sources.
  const involved = (r: ReleaseObject) => r.wave !== undefined || r.triggerWindows !== undefined || r.rolloutNow !== undefined || r.tracked === true;
  if (!involved(old) && !involved(release)) return false;
  // A generation bump that comes with a suspend toggle is a hold (or its lift): it changes no
  // decision, and a change of 2,000 held releases must not wake their sources 2,000 times.
  const generationMatters = (release.wave !== undefined || release.tracked === true) && old.suspend === release.suspend && old.generation !== release.generation;
  return generationMatters || rolloutView(old) !== rolloutView(release);
}
