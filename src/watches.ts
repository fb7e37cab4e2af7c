// What each informer event queues, in the manner of controller-runtime's Watches: sources changed
// or deleted wake themselves, HelmReleases that appear, resume or change labels wake the sources
// that name them or that they read, and either may change autodiscovery's marks.
import type { Keys } from './keys.js';
import type { TargetIndex, ValuesIndex } from './mapping/index.js';
import { parseTargets } from './mapping/targets.js';
import type { WorkQueue } from './queue.js';
import type { InformerHandlers } from './sources/informer.js';
import type { ReleaseObject, SourceObject } from './sources/objects.js';

/** The sources to reconcile when a HelmRelease appears or may now be triggered: those naming it, then those it reads. */
export function sourcesToWake(release: ReleaseObject, index: Pick<TargetIndex, 'sourcesOf'>, values: Pick<ValuesIndex, 'sourcesOf'>): string[] {
  return [...index.sourcesOf(release), ...values.sourcesOf(release)];
}

export function contentChanged(old: SourceObject, src: SourceObject): boolean {
  return old.digest !== src.digest;
}

/** Same keys with the same values, in the same order (the order of a watch event's JSON). */
function sameFields<T extends object>(a: T, b: T): boolean {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i] || a[ka[i] as keyof T] !== b[ka[i] as keyof T]) return false;
  return true;
}

// Every HelmRelease event asks these (each trigger's own patch comes back as one): compared field
// by field, not through JSON.stringify's copies.
const labelsChanged = (old: ReleaseObject, release: ReleaseObject): boolean => !sameFields(old.labels, release.labels);

/** valuesFrom or labels (the release selector) changed: the values index and marks may be stale. */
export function needsReindex(old: ReleaseObject, release: ReleaseObject): boolean {
  const [a, b] = [old.valuesFrom, release.valuesFrom];
  return a.length !== b.length || a.some((ref, i) => !sameFields(ref, b[i]!)) || labelsChanged(old, release);
}

export function resumed(old: ReleaseObject, release: ReleaseObject): boolean {
  return old.suspended !== release.suspended || old.paused !== release.paused;
}

/** Resumed, recreated (new uid) or relabeled into or out of scope: its sources may now trigger it. */
export function needsWake(old: ReleaseObject, release: ReleaseObject): boolean {
  return resumed(old, release) || old.uid !== release.uid || labelsChanged(old, release);
}

/** Sources hrto marked, or that releases read: their marks may need adding or removing. */
export function marksMayChange(src: SourceObject, keys: Pick<Keys, 'autodiscovered'>, values: Pick<ValuesIndex, 'consumersOf'>): boolean {
  return src.annotations[keys.autodiscovered] !== undefined || values.consumersOf(src.key).length > 0;
}

export interface WatchDeps {
  index: TargetIndex;
  values: ValuesIndex;
  /** The trigger queue, keyed by source. */
  queue: Pick<WorkQueue<string>, 'add'>;
  /** Queues a source's autodiscovery marks for a check (a no-op without autodiscovery). */
  mark: (key: string) => void;
}

export interface SourceWatchDeps extends WatchDeps {
  keys: Keys;
  defaultNamespace: string;
  getSource: (key: string) => SourceObject | undefined;
  /** Records when a source's content changed, for the trigger's reason. */
  noteChange: (key: string) => void;
  /** Caches synced: from then on a created source is a user's change. */
  synced: () => boolean;
}

export function sourceHandlers({ index, values, queue, mark, keys, defaultNamespace, getSource, noteChange, synced }: SourceWatchDeps): InformerHandlers<SourceObject> {
  const indexSource = (src: SourceObject): void => {
    try {
      index.set(src.key, parseTargets(src.annotations, keys, defaultNamespace));
    } catch {
      index.delete(src.key); // reported by the reconciler
    }
  };
  const markIfDiscovered = (src: SourceObject): void => {
    if (marksMayChange(src, keys, values)) mark(src.key);
  };
  return {
    // A source created, or its content changed, once the caches are synced is a user's change:
    // urgent, ahead of a first-sight wave still being worked through.
    add: (src) => {
      indexSource(src);
      noteChange(src.key);
      queue.add(src.key, synced());
      markIfDiscovered(src);
    },
    update: (old, src) => {
      indexSource(src);
      const changed = contentChanged(old, src);
      if (changed) noteChange(src.key);
      queue.add(src.key, changed);
      markIfDiscovered(src);
    },
    resync: (src) => {
      queue.add(src.key);
      markIfDiscovered(src);
    },
    delete: (src) => {
      // Another informer (another watch-label spelling) may still hold it.
      if (!getSource(src.key)) index.delete(src.key);
      queue.add(src.key);
      // Unlabeled by a user or deleted: autodiscovery labels it again while releases read it.
      markIfDiscovered(src);
    },
  };
}

export interface ReleaseWatchDeps extends WatchDeps {
  /** A status change that should wake the release's sources too; by default none does. */
  releaseStatusChanged?: (old: ReleaseObject, release: ReleaseObject) => boolean;
  /** Derived views kept in step with the cache (hrto's marks, upgrades in flight). */
  track?: (release: ReleaseObject, deleted: boolean) => void;
  /** A look at a release's hold. */
  wakeHold?: (key: string) => void;
  /** A release changed in a way that may change its sources' decisions (the ones that wake them). */
  decisionsChanged?: () => void;
  /** How a source is woken for a release's change; default: queued at once. */
  wakeSource?: (key: string) => void;
}

/** A release hrto marked (or marked until now): any change of it may change its hold (an override, a source dropped). */
export const holdMayChange = (old: ReleaseObject | undefined, release: ReleaseObject): boolean => release.holdMark !== undefined || old?.holdMark !== undefined;

export function releaseHandlers({ index, values, queue, mark, releaseStatusChanged = () => false, track, wakeHold, decisionsChanged, wakeSource = (key) => queue.add(key) }: ReleaseWatchDeps): InformerHandlers<ReleaseObject> {
  const wakeSourcesOf = (release: ReleaseObject): void => {
    decisionsChanged?.();
    for (const key of sourcesToWake(release, index, values)) wakeSource(key);
  };
  // Every source referenced before or now may need new marks and a reconcile.
  const requeue = (affected: readonly string[]): void => {
    decisionsChanged?.();
    for (const key of affected) {
      mark(key);
      queue.add(key);
    }
  };
  return {
    add: (release) => {
      requeue(values.set(release));
      wakeSourcesOf(release);
      track?.(release, false);
      if (holdMayChange(undefined, release)) wakeHold?.(release.key);
    },
    update: (old, release) => {
      if (needsReindex(old, release)) requeue(values.set(release));
      if (needsWake(old, release) || releaseStatusChanged(old, release)) wakeSourcesOf(release);
      track?.(release, false);
      if (holdMayChange(old, release)) wakeHold?.(release.key);
    },
    resync: (release) => {
      for (const key of values.sourcesOf(release)) mark(key);
      if (holdMayChange(undefined, release)) wakeHold?.(release.key);
    },
    delete: (release) => {
      requeue(values.delete(release));
      track?.(release, true);
    },
  };
}
