// Autodiscovery's marks on a source: the watch label and the seed's target annotations, written for
// the HelmReleases that read the source through valuesFrom. What hrto added is recorded in its own
// annotation, so it later removes exactly that and never what a user wrote.
import type { Keys } from '../keys.js';
import type { MetadataPatch } from '../kube/client.js';

/** What autodiscovery added to a source. */
export interface OwnedMarks {
  label: boolean;
  namespace: boolean;
  names: string[];
}

const NONE: OwnedMarks = { label: false, namespace: false, names: [] };

export function parseOwnedMarks(value: string | undefined): OwnedMarks {
  if (!value) return NONE;
  try {
    const raw = JSON.parse(value) as Partial<OwnedMarks>;
    return {
      label: raw.label === true,
      namespace: raw.namespace === true,
      names: Array.isArray(raw.names) ? raw.names.filter((n): n is string => typeof n === 'string') : [],
    };
  } catch {
    return NONE; // not ours to interpret: treat as nothing added
  }
}

export interface MarkState {
  namespace: string;
  /** The value of the watch label, if the source has it. */
  label: string | undefined;
  /** hrto's own annotations (its key domain). */
  annotations: Readonly<Record<string, string>>;
}

export interface MarkPlan {
  /** Merge patch to apply; undefined when the marks are already right. */
  patch: MetadataPatch | undefined;
  /** The watch label is set to something other than "true": the user opted this source out. */
  optedOut: boolean;
  /** Why the consumers could not be written into the names annotation (it targets another namespace). */
  conflict: string | undefined;
}

const splitNames = (value: string | undefined): string[] =>
  [...new Set((value ?? '').split(',').map((n) => n.trim()).filter((n) => n !== ''))].sort();

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x) => b.includes(x));

/**
 * The patch that makes a source's marks name exactly `consumers` (HelmReleases in the source's own
 * namespace), keeping whatever a user wrote. With no consumers it removes everything hrto added,
 * the digests it recorded included, so a source labeled again later is seen for the first time.
 */
export function planMarks(state: MarkState, consumers: readonly string[], keys: Keys, defaultNamespace: string): MarkPlan {
  const ann = state.annotations;
  const owned = parseOwnedMarks(ann[keys.autodiscovered]);
  const want = consumers.length > 0;
  if (want && state.label !== undefined && state.label !== 'true' && !owned.label) {
    return { patch: undefined, optedOut: true, conflict: undefined };
  }
  const current = splitNames(ann[keys.targetNames]);
  const userNames = current.filter((n) => !owned.names.includes(n));
  const namespaceValue = ann[keys.targetNamespace]?.trim() || undefined;
  // Names can only be added where the annotation's namespace is (or becomes) the source's own.
  const effective = namespaceValue ?? (userNames.length > 0 ? defaultNamespace : state.namespace);
  const conflict =
    want && effective !== state.namespace
      ? `${keys.targetNamespace} targets ${effective}, but the HelmReleases reading this source through valuesFrom are in ${state.namespace}`
      : undefined;

  const ownedNames = conflict ? [] : consumers.filter((n) => !userNames.includes(n)).sort();
  const next: OwnedMarks = { label: owned.label, namespace: owned.namespace, names: ownedNames };
  const labels: Record<string, string | null> = {};
  const annotations: Record<string, string | null> = {};

  if (want && state.label !== 'true') {
    labels[keys.watchLabel] = 'true';
    next.label = true;
  } else if (!want && owned.label) {
    labels[keys.watchLabel] = null;
    next.label = false;
  }
  if (!sameSet(ownedNames, owned.names)) {
    const names = [...new Set([...userNames, ...ownedNames])].sort();
    annotations[keys.targetNames] = names.length > 0 ? names.join(',') : null;
  }
  if (ownedNames.length > 0 && namespaceValue === undefined && userNames.length === 0) {
    annotations[keys.targetNamespace] = state.namespace;
    next.namespace = true;
  } else if (ownedNames.length === 0 && userNames.length === 0 && owned.namespace) {
    annotations[keys.targetNamespace] = null;
    next.namespace = false;
  }
  if (owned.label && !next.label) {
    // Unwatched from now on: a digest left behind would make a later relabel look like a change.
    if (ann[keys.configDigest] !== undefined) annotations[keys.configDigest] = null;
    if (ann[keys.keyDigests] !== undefined) annotations[keys.keyDigests] = null;
  }
  const anything = next.label || next.namespace || next.names.length > 0;
  const record = anything ? JSON.stringify(next) : null;
  if ((record ?? undefined) !== ann[keys.autodiscovered]) annotations[keys.autodiscovered] = record;

  if (Object.keys(labels).length === 0 && Object.keys(annotations).length === 0) {
    return { patch: undefined, optedOut: false, conflict };
  }
  return {
    patch: {
      metadata: {
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      },
    },
    optedOut: false,
    conflict,
  };
}
