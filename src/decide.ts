// The pure decision of one reconcile: what to do for each target of a source, and whether the
// source's digest may be recorded. The reconciler fetches the inputs and carries the plan out.
import { isOwnDigest } from './digest.js';
import type { ObjectRef } from './mapping/targets.js';
import type { ReleaseObject } from './sources/objects.js';

export type TargetAction =
  /** Ask helm-controller to reconcile (and force an upgrade, in force mode). */
  | 'trigger'
  /** First sight and the release is newer than the content: nothing to do but record. */
  | 'adopt'
  /** Already triggered for this very digest by this process; waiting on other targets. */
  | 'done'
  /** The HelmRelease does not exist (yet): retry with backoff, and when it appears. */
  | 'missing'
  /** spec.suspend: wait for it to be resumed. */
  | 'suspended';

export interface TargetPlan {
  ref: ObjectRef;
  action: TargetAction;
}

export interface Plan {
  /** The recorded digest equals the content's: nothing to do. */
  upToDate: boolean;
  /** No digest of this edition is recorded (new source, first start, an older operator's digest). */
  firstSight: boolean;
  targets: TargetPlan[];
  /** Every target is handled, so the digest can be recorded now. */
  record: boolean;
}

export interface DecideInput {
  digest: string;
  recorded: string | undefined;
  contentChangedAt: string | undefined;
  targets: readonly { ref: ObjectRef; release: ReleaseObject | undefined; triggeredDigest: string | undefined }[];
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

export function decide(input: DecideInput): Plan {
  if (input.recorded === input.digest) return { upToDate: true, firstSight: false, targets: [], record: false };
  const firstSight = !isOwnDigest(input.recorded);
  const targets = input.targets.map(({ ref, release, triggeredDigest }): TargetPlan => {
    if (!release) return { ref, action: 'missing' };
    if (release.suspended) return { ref, action: 'suspended' };
    if (triggeredDigest === input.digest) return { ref, action: 'done' };
    if (firstSight && !contentNewerThanRelease(input.contentChangedAt, release)) return { ref, action: 'adopt' };
    return { ref, action: 'trigger' };
  });
  const record = targets.every((t) => t.action === 'trigger' || t.action === 'adopt' || t.action === 'done');
  return { upToDate: false, firstSight, targets, record };
}
