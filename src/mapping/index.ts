// Indexes between sources and HelmReleases. A many-to-many map kept in both directions, so an
// event on either side finds exactly the keys on the other side it affects.
import type { ReleaseObject, SourceKind, ValuesReference } from '../sources/objects.js';
import { sourceKey } from '../sources/objects.js';
import { type ObjectRef, refKey } from './targets.js';

function sameEntries<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.has(k) || b.get(k) !== v) return false;
  return true;
}

/** owner -> (member -> value), with the reverse member -> owners. */
export class ManyToMany<V> {
  private readonly forward = new Map<string, Map<string, V>>();
  private readonly reverse = new Map<string, Set<string>>();

  /** Replaces what an owner maps to; returns the members before and after (all affected). */
  set(owner: string, members: ReadonlyMap<string, V>): string[] {
    // Most events leave an owner's members as they were: nothing to rebuild then.
    const current = this.forward.get(owner);
    if (current && sameEntries(current, members)) return [...current.keys()];
    const affected = this.delete(owner);
    if (members.size === 0) return affected;
    this.forward.set(owner, new Map(members));
    for (const member of members.keys()) {
      let owners = this.reverse.get(member);
      if (!owners) this.reverse.set(member, (owners = new Set()));
      owners.add(owner);
    }
    return [...new Set([...affected, ...members.keys()])];
  }

  /** Removes an owner; returns the members it mapped to. */
  delete(owner: string): string[] {
    const members = this.forward.get(owner);
    if (!members) return [];
    for (const member of members.keys()) {
      const owners = this.reverse.get(member);
      owners?.delete(owner);
      if (owners?.size === 0) this.reverse.delete(member);
    }
    this.forward.delete(owner);
    return [...members.keys()];
  }

  membersOf(owner: string): string[] {
    return [...(this.forward.get(owner)?.keys() ?? [])];
  }

  ownersOf(member: string): string[] {
    return [...(this.reverse.get(member) ?? [])];
  }

  get(owner: string, member: string): V | undefined {
    return this.forward.get(owner)?.get(member);
  }

  get size(): number {
    return this.forward.size;
  }
}

/** Target HelmRelease -> sources naming it, so a HelmRelease that appears or is resumed wakes them. */
export class TargetIndex {
  private readonly index = new ManyToMany<true>();

  /** Replaces what a source targets. */
  set(source: string, targets: readonly ObjectRef[]): void {
    this.index.set(source, new Map(targets.map((t) => [refKey(t), true])));
  }

  delete(source: string): void {
    this.index.delete(source);
  }

  sourcesOf(target: ObjectRef): string[] {
    return this.index.ownersOf(refKey(target));
  }

  get size(): number {
    return this.index.size;
  }
}

/** A HelmRelease reading a source through spec.valuesFrom, and which of its keys. */
export interface Consumer {
  ref: ObjectRef;
  /** Sorted values keys; a release may list one source several times with different keys. */
  keys: string[];
}

/**
 * Source -> HelmReleases reading it through spec.valuesFrom (always in their own namespace). Only
 * references to the kinds given are indexed: with Secrets off, a Secret reference is nobody's source.
 */
export class ValuesIndex {
  private readonly index = new ManyToMany<string[]>();

  constructor(private readonly kinds: ReadonlySet<SourceKind> = new Set(['ConfigMap', 'Secret'])) {}

  /** Indexes a HelmRelease's valuesFrom; returns the source keys referenced before or now. */
  set(release: ReleaseObject): string[] {
    const refs = release.valuesFrom.filter((ref) => this.kinds.has(ref.kind));
    return this.index.set(refKey(release), valuesKeysBySource(release.namespace, refs));
  }

  /** The indexed sources a HelmRelease reads, in valuesFrom order. */
  sourcesOf(release: ObjectRef): string[] {
    return this.index.membersOf(refKey(release));
  }

  delete(release: ObjectRef): string[] {
    return this.index.delete(refKey(release));
  }

  consumersOf(source: string): Consumer[] {
    return this.index
      .ownersOf(source)
      .sort()
      .map((release) => {
        const [namespace = '', name = ''] = release.split('/');
        return { ref: { namespace, name }, keys: this.index.get(release, source) ?? [] };
      });
  }
}

function valuesKeysBySource(namespace: string, refs: readonly ValuesReference[]): Map<string, string[]> {
  const bySource = new Map<string, Set<string>>();
  for (const ref of refs) {
    const key = sourceKey(ref.kind, namespace, ref.name);
    let keys = bySource.get(key);
    if (!keys) bySource.set(key, (keys = new Set()));
    keys.add(ref.valuesKey);
  }
  return new Map([...bySource].map(([key, keys]) => [key, [...keys].sort()]));
}
