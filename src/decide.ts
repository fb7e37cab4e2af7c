// The pure decision of one reconcile: what to do for each target of a source, and whether the
// source's digest may be recorded. The reconciler fetches the inputs and carries the plan out.
import { isOwnDigest, selectKeyDigests } from './digest.js';
import type { ObjectRef } from './mapping/targets.js';
import type { ReleaseObject } from './sources/objects.js';

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
  | 'paused';

export interface TargetPlan {
  ref: ObjectRef;
  action: TargetAction;
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
}

export interface TargetInput {
  ref: ObjectRef;
  release: ReleaseObject | undefined;
  triggeredDigest: string | undefined;
  /** The keys the release reads through valuesFrom; undefined: the whole content counts. */
  valuesKeys?: readonly string[] | undefined;
  /** Left to helm-controller's own watch of this source. */
  fluxWatches?: boolean | undefined;
  /** Matches this instance's HelmRelease selector (default: every release does). */
  inScope?: boolean | undefined;
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

const HANDLED: ReadonlySet<TargetAction> = new Set(['adopt', 'done', 'unchanged', 'deferred', 'outOfScope']);

export function decide(input: DecideInput): Plan {
  const readKeys = new Set(input.targets.flatMap((t) => t.valuesKeys ?? []));
  const keyDigests = selectKeyDigests(input.keyDigests, readKeys);
  if (input.recorded === input.digest) {
    const targets = input.targets.map(({ ref }): TargetPlan => ({ ref, action: 'current' }));
    return { upToDate: true, firstSight: false, targets, record: false, keyDigests };
  }
  const firstSight = !isOwnDigest(input.recorded);
  const targets = input.targets.map(({ ref, release, triggeredDigest, valuesKeys, fluxWatches, inScope }): TargetPlan => {
    if (!release) return { ref, action: 'missing' };
    if (inScope === false) return { ref, action: 'outOfScope' };
    if (release.suspended) return { ref, action: 'suspended' };
    if (input.sourcePaused || release.paused) return { ref, action: 'paused' };
    if (triggeredDigest === input.digest) return { ref, action: 'done' };
    const keys = firstSight || !valuesKeys ? undefined : keysState(input, valuesKeys);
    if (keys === 'unchanged') return { ref, action: 'unchanged' };
    if (fluxWatches) return { ref, action: 'deferred' };
    if ((firstSight || keys === 'unrecorded') && !contentNewerThanRelease(input.contentChangedAt, release)) return { ref, action: 'adopt' };
    return { ref, action: 'trigger' };
  });
  const record = targets.every((t) => HANDLED.has(t.action));
  return { upToDate: false, firstSight, targets, record, keyDigests };
}
