// The reverse index target HelmRelease -> sources naming it, so a HelmRelease that appears or is
// resumed wakes exactly the sources waiting for it.
import { type ObjectRef, refKey } from './targets.js';

export class TargetIndex {
  private readonly targetsBySource = new Map<string, string[]>();
  private readonly sourcesByTarget = new Map<string, Set<string>>();

  /** Replaces what a source targets. */
  set(source: string, targets: readonly ObjectRef[]): void {
    this.delete(source);
    const keys = targets.map(refKey);
    if (keys.length === 0) return;
    this.targetsBySource.set(source, keys);
    for (const key of keys) {
      let sources = this.sourcesByTarget.get(key);
      if (!sources) this.sourcesByTarget.set(key, (sources = new Set()));
      sources.add(source);
    }
  }

  delete(source: string): void {
    for (const key of this.targetsBySource.get(source) ?? []) {
      const sources = this.sourcesByTarget.get(key);
      sources?.delete(source);
      if (sources?.size === 0) this.sourcesByTarget.delete(key);
    }
    this.targetsBySource.delete(source);
  }

  sourcesOf(target: ObjectRef): string[] {
    return [...(this.sourcesByTarget.get(refKey(target)) ?? [])];
  }

  get size(): number {
    return this.targetsBySource.size;
  }
}
