// The health reading of one trigger: did the forced upgrade hrto requested of a HelmRelease happen
// and leave the release healthy? Pure: it reads the cached release (see toRelease) and hrto's record
// of the trigger (the `<domain>/rollout` annotation, written in the same patch as the trigger).
//
// What helm-controller (v1.6.4) does, and so what the reading relies on:
// - status.lastHandledReconcileAt is copied from requestedAt at the end of every reconcile that saw the
//   request (HelmReleaseReconciler.Reconcile's deferred patch), even one that failed or exited early:
//   it says "handled", never "worked".
// - Reconciling=True is set at the start of reconcileRelease and before each Helm action, and is
//   removed only when the atomic release finds nothing left to do (or Stalled is set). An error
//   before Helm stores a release (a values schema violation, a render error) leaves it True while
//   the controller retries, with Ready=False/UpgradeFailed and status.failures + 1.
// - Every release action adds the history entry with the next version (action install, upgrade or
//   rollback); a rollback's entry has action rollback and status deployed.
// - status.failures goes up by one for each failed attempt, stored or not; it is reset by a change
//   of generation, chart version or values digest, by resetAt, and (RetryOnFailure only) by a success.
import { formatDuration } from '../duration.js';
import type { ConditionFacts, ReleaseObject } from '../sources/objects.js';

/** hrto's record of one trigger, kept on the HelmRelease as `<domain>/rollout`. */
export interface RolloutRecord {
  /** The requestedAt value of this trigger (RFC3339Nano). */
  at: string;
  /** The highest status.history version before the trigger. */
  v: number;
  /** status.failures before the trigger (0 when the trigger also resets). */
  f: number;
  /** The trigger forced an upgrade (forceAt = requestedAt). */
  force: boolean;
  /** The sources whose change it carried: `Kind/namespace/name` → digest prefix. */
  src: Record<string, string>;
  /**
   * Not a request of hrto's: helm-controller applied a held change by itself (see rollout/hold.ts).
   * Its outcome is read from what came after `v`, with no request to be handled.
   */
  slip?: boolean | undefined;
  /** A step of a source's rollout plan: the release's status is kept and its outcome read (a wave's always is). */
  track?: boolean | undefined;
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** An annotation value holding a JSON object; anything else (absent, not JSON, not an object): undefined. */
export function jsonObject(value: string | undefined): Record<string, unknown> | undefined {
  if (!value) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return undefined;
  }
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
}

/** The string entries of a JSON object (source -> digest prefix); undefined when it is not one. */
export function stringEntries(obj: unknown): Record<string, string> | undefined {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, d] of Object.entries(obj)) if (typeof d === 'string') out[k] = d;
  return out;
}

/** The record in an annotation value; anything that is not one (absent, not JSON, wrong types): undefined. */
export function parseRolloutRecord(value: string | undefined): RolloutRecord | undefined {
  const raw = jsonObject(value);
  if (!raw) return undefined;
  const { at, v, f, force, src, slip, track } = raw;
  if (typeof at !== 'string' || !Number.isFinite(Date.parse(at))) return undefined;
  if (!isCount(v) || !isCount(f) || typeof force !== 'boolean') return undefined;
  const sources = src === undefined ? {} : stringEntries(src);
  return sources && { at, v, f, force, src: sources, ...(slip === true ? { slip } : {}), ...(track === true ? { track } : {}) };
}

/** The annotation value: compact JSON, fields in a fixed order. */
export function encodeRolloutRecord(r: RolloutRecord): string {
  return JSON.stringify({ at: r.at, v: r.v, f: r.f, force: r.force, src: r.src, ...(r.slip ? { slip: true } : {}), ...(r.track ? { track: true } : {}) });
}

export type Health = { state: 'progressing' } | { state: 'succeeded' } | { state: 'failed'; reason: string; message: string };

/**
 * Ready (or Released) reasons that end an attempt in failure. UpgradeFailed and InstallFailed come
 * from the release actions, TestFailed from the test action; RollbackSucceeded, RollbackFailed,
 * UninstallSucceeded and UninstallFailed from remediation (Ready summarizes Remediated as False).
 */
export const FAILED_REASONS: ReadonlySet<string> = new Set([
  'UpgradeFailed',
  'InstallFailed',
  'TestFailed',
  'RollbackSucceeded',
  'RollbackFailed',
  'UninstallSucceeded',
  'UninstallFailed',
]);

/** What to note in the record before patching: the newest history version and the failure count. */
export function snapshotBefore(release: ReleaseObject, reset = false): { v: number; f: number } {
  // A reset (resetAt) clears the counters before the attempt: count from zero then.
  return { v: release.version ?? release.newest?.version ?? 0, f: reset ? 0 : (release.failures ?? 0) };
}

const isTrue = (c: ConditionFacts | undefined): c is ConditionFacts => c?.status === 'True';
const isFalse = (c: ConditionFacts | undefined): c is ConditionFacts => c?.status === 'False';
const conditionText = (c: ConditionFacts | undefined, type: string): string =>
  c ? `${type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}` : `no ${type}`;

/** The request of this trigger was seen by a reconcile that has ended (or by one that replaced it). */
function requestHandled(release: ReleaseObject, record: RolloutRecord): boolean {
  const handled = release.lastHandledReconcileAt;
  if (handled === undefined) return false;
  if (handled === record.at) return true;
  // Someone requested another reconcile after ours (helm-controller may never have seen ours):
  // the reconcile that handled the newer request stands for ours.
  const requested = release.requestedAt;
  return requested !== undefined && requested !== record.at && handled === requested;
}

/** The most telling reason and message of a failure, from the conditions, else the fallback. */
function failure(release: ReleaseObject, fallback: { reason: string; message: string }): Health {
  const { ready, stalled, testSuccess, released } = release.conditions ?? {};
  const failed = (reason: string, message: string): Health => ({ state: 'failed', reason: reason || fallback.reason, message: message || fallback.message });
  // Stalled says that helm-controller gave up (RetriesExceeded); Ready says why.
  if (isTrue(stalled)) return failed(stalled.reason, isFalse(ready) && ready.message ? ready.message : stalled.message);
  if (isFalse(ready) && FAILED_REASONS.has(ready.reason)) return failed(ready.reason, ready.message);
  if (isFalse(testSuccess)) return failed(testSuccess.reason || 'TestFailed', testSuccess.message);
  if (isFalse(released) && released.reason) return failed(released.reason, released.message);
  return { state: 'failed', ...fallback };
}

/**
 * What came of the trigger `record` describes, read from the release's current status. `now` and
 * `timeoutMs` (--wave-timeout; 0 or less: never) bound how long it may be in progress after `at`.
 */
export function readHealth(release: ReleaseObject, record: RolloutRecord, now: number, timeoutMs: number): Health {
  const c = release.conditions;
  const newest = release.newest;
  const generation = release.generation ?? 0;
  const failures = release.failures ?? 0;
  // A slip has no request: what helm-controller did since `v` is all there is to read.
  const seen = record.slip === true || requestHandled(release, record);
  // Settled: the reconcile is over, or helm-controller gave up.
  const settled = !isTrue(c?.reconciling) || isTrue(c?.stalled);
  const handled = seen && settled;
  const newer = newest !== undefined && newest.version > record.v;

  // A release made after the trigger failed or was rolled back (the entry may no longer be the
  // newest: a later retry does not undo the failure).
  const badVersion = release.badVersion ?? 0;
  if (badVersion > record.v) {
    const action = newest?.action;
    return failure(release, {
      reason: action === 'rollback' ? 'RollbackSucceeded' : action === 'install' ? 'InstallFailed' : 'UpgradeFailed',
      message: action === 'rollback' ? `release v${newest?.version ?? badVersion} is a rollback` : `release v${badVersion} failed`,
    });
  }
  // An attempt failed, stored or not (a values schema violation or a render error stores nothing).
  if (failures > record.f) {
    return failure(release, { reason: 'UpgradeFailed', message: `status.failures rose from ${record.f} to ${failures}` });
  }
  const ready = c?.ready;
  if (seen && isTrue(c?.stalled)) return failure(release, { reason: 'Stalled', message: 'helm-controller stopped retrying' });
  // The reconcile that saw the request ended in a failed action. Checked even while Reconciling
  // stays True: after a failure before Helm stores a release it does, while the controller retries
  // with backoff (and status.failures may have been reset by the same change, so not count it).
  if (seen && isFalse(ready) && FAILED_REASONS.has(ready.reason)) return failure(release, { reason: ready.reason, message: ready.message });
  if (handled && release.testEnabled && isFalse(c?.testSuccess)) return failure(release, { reason: 'TestFailed', message: 'Helm tests failed' });
  // The force was used up without an upgrade: the request was handled, no release came of it.
  if (handled && record.force && !newer) {
    return {
      state: 'failed',
      reason: 'NoUpgrade',
      message: `the reconcile request was handled without a new release (newest v${newest?.version ?? 0}; ${conditionText(ready, 'Ready')})`,
    };
  }

  // (failures <= f holds here: more is a failure above.)
  if (handled && succeeded(release, record, newer, generation)) return { state: 'succeeded' };

  // Deployed, and a later reconcile (helm-controller's interval) is under way: not a timeout.
  if (deployedAt(release, record) !== undefined && !isFalse(ready)) return { state: 'progressing' };
  if (timeoutMs > 0 && now - Date.parse(record.at) > timeoutMs) {
    const state = !seen ? 'the reconcile request was not handled' : !settled ? conditionText(c?.reconciling, 'Reconciling') : conditionText(ready, 'Ready');
    return { state: 'failed', reason: 'Timeout', message: `not healthy within ${formatDuration(timeoutMs)} of the trigger (${state})` };
  }
  return { state: 'progressing' };
}

function succeeded(release: ReleaseObject, record: RolloutRecord, newer: boolean, generation: number): boolean {
  const c = release.conditions;
  const newest = release.newest;
  const ready = c?.ready;
  if (!isTrue(ready) || ready.observedGeneration !== generation) return false;
  if (!newest || newest.status !== 'deployed') return false;
  // A new release made by an upgrade or install; without force and without a new release the release
  // was in sync already (nothing needed upgrading), which the remaining checks confirm.
  if ((record.force || newer) && !(newer && (newest.action === 'upgrade' || newest.action === 'install'))) return false;
  if (!release.lastAttemptedConfigDigest || newest.configDigest !== release.lastAttemptedConfigDigest) return false;
  return !release.testEnabled || isTrue(c?.testSuccess);
}

/** When Helm deployed the release this trigger made (epoch ms); undefined: none yet. */
export function deployedAt(release: ReleaseObject, record: RolloutRecord): number | undefined {
  const newest = release.newest;
  if (!newest || newest.version <= record.v || newest.status !== 'deployed') return undefined;
  if (newest.action !== 'upgrade' && newest.action !== 'install') return undefined;
  return newest.deployedAt ?? Date.parse(record.at);
}

export type Baked = Health | { state: 'baking'; until: number };

/**
 * A plan step's outcome of one release with its bake: healthy for `bakeMs` after Helm deployed the
 * trigger's release. Ready=False since before the bake's end fails it (a rollback or a new failure
 * already fails the health reading). Pure, like readHealth: it reads only the object.
 */
export function readBake(release: ReleaseObject, record: RolloutRecord, health: Health, bakeMs: number, now: number): Baked {
  if (health.state === 'failed' || bakeMs <= 0) return health;
  // Without a new release (in sync already, no force), the bake counts from the handled request.
  const from = deployedAt(release, record) ?? (health.state === 'succeeded' ? Date.parse(record.at) : undefined);
  if (from === undefined) return health;
  const until = from + bakeMs;
  const ready = release.conditions?.ready;
  if (isFalse(ready) && (ready.since ?? now) < until) {
    return {
      state: 'failed',
      reason: ready.reason || 'NotReady',
      message: `Ready=False during its bake (until ${new Date(until).toISOString()})${ready.message ? `: ${ready.message}` : ''}`,
    };
  }
  if (now < until) return { state: 'baking', until };
  // Turned unhealthy only after its bake ended: the step is done.
  return isFalse(ready) ? { state: 'succeeded' } : health;
}
