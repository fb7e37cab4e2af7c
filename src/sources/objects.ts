// What hrto caches of each watched object: metadata it decides on and a content digest, never the
// content itself (so a Secret's values are not held in memory after the digest is computed).
import { contentDigest, type ContentSections, keyDigests } from '../digest.js';
import { FLUX_REQUESTED_AT, type Keys, keysFor, TRIGGER_DISABLED } from '../keys.js';
import type { Cached, RawObject } from './informer.js';

export type SourceKind = 'ConfigMap' | 'Secret';

export interface SourceObject extends Cached {
  kind: SourceKind;
  namespace: string;
  name: string;
  uid: string;
  /** Only hrto's own annotations (its key domain): others can be large or, for Secrets, sensitive. */
  annotations: Record<string, string>;
  digest: string;
  /** Digest of each key on its own, for releases known (through valuesFrom) to read only some keys. */
  keyDigests: Record<string, string>;
  /** Labeled reconcile.fluxcd.io/watch=Enabled: helm-controller >= 1.4 reconciles its consumers itself. */
  fluxWatch: boolean;
  /** When the content was last written, as far as managedFields tell; ISO 8601. */
  contentChangedAt: string | undefined;
}

/** One spec.valuesFrom entry; sources always live in the HelmRelease's own namespace. */
export interface ValuesReference {
  kind: SourceKind;
  name: string;
  valuesKey: string;
  optional: boolean;
}

export interface ReleaseObject extends Cached {
  namespace: string;
  name: string;
  uid: string;
  suspended: boolean;
  labels: Record<string, string>;
  /** reconcile.fluxcd.io/requestedAt: the last reconcile request, hrto's or anyone's. */
  requestedAt: string | undefined;
  /** Annotated `<domain>/trigger: disabled`: hrto does not trigger it. */
  paused: boolean;
  /** helm-controller gave up: Stalled=True (retries exhausted); a trigger also asks for a reset. */
  stalled: boolean;
  valuesFrom: ValuesReference[];
  /** status.history[0]: the latest release helm-controller made, if any. */
  lastRelease: { deployedAt: string; status: string } | undefined;
}

interface ManagedFieldsEntry {
  manager?: string;
  time?: string;
  fieldsV1?: Record<string, unknown>;
}

interface SourceRaw {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    managedFields?: ManagedFieldsEntry[];
  };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export const FIELD_MANAGER = 'helmrelease-trigger-operator';

/**
 * The newest write of content by any manager but hrto: managedFields entries owning data or
 * binaryData. Falls back to the creation time when no manager is recorded.
 */
export function contentChangedAt(meta: SourceRaw['metadata']): string | undefined {
  let latest: string | undefined;
  for (const entry of meta?.managedFields ?? []) {
    if (entry.manager === FIELD_MANAGER || !entry.time) continue;
    const fields = entry.fieldsV1 ?? {};
    if (!('f:data' in fields) && !('f:binaryData' in fields)) continue;
    if (!latest || Date.parse(entry.time) > Date.parse(latest)) latest = entry.time;
  }
  return latest ?? meta?.creationTimestamp;
}

function ownAnnotations(all: Record<string, string> | undefined, keys: Keys): Record<string, string> {
  const prefix = `${keys.domain}/`;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(all ?? {})) if (k.startsWith(prefix)) out[k] = v;
  return out;
}

export function sourceKey(kind: SourceKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export const FLUX_WATCH_LABEL = 'reconcile.fluxcd.io/watch';

/** A ConfigMap's or Secret's content in digest form (a Secret's `data` is base64, like `binaryData`). */
export function contentOf(kind: SourceKind, obj: { data?: Record<string, string>; binaryData?: Record<string, string> }): ContentSections {
  return kind === 'Secret' ? { binaryData: obj.data } : { data: obj.data, binaryData: obj.binaryData };
}

export function toSource(kind: SourceKind, keys: Keys): (raw: RawObject) => SourceObject {
  return (raw) => {
    const obj = raw as SourceRaw;
    const meta = obj.metadata ?? {};
    const namespace = meta.namespace ?? '';
    const name = meta.name ?? '';
    const content = contentOf(kind, obj);
    return {
      key: sourceKey(kind, namespace, name),
      resourceVersion: meta.resourceVersion ?? '',
      kind,
      namespace,
      name,
      uid: meta.uid ?? '',
      annotations: ownAnnotations(meta.annotations, keys),
      digest: contentDigest(content),
      keyDigests: keyDigests(content),
      fluxWatch: meta.labels?.[FLUX_WATCH_LABEL] === 'Enabled',
      contentChangedAt: contentChangedAt(meta),
    };
  };
}

interface ReleaseRaw {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: {
    suspend?: boolean;
    valuesFrom?: { kind?: string; name?: string; valuesKey?: string; optional?: boolean }[];
  };
  status?: {
    history?: { lastDeployed?: string; firstDeployed?: string; status?: string }[];
    conditions?: { type?: string; status?: string; reason?: string }[];
  };
}

export function toRelease(raw: RawObject, keys: Keys = keysFor()): ReleaseObject {
  const obj = raw as ReleaseRaw;
  const meta = obj.metadata ?? {};
  const latest = obj.status?.history?.[0];
  const deployedAt = latest?.lastDeployed ?? latest?.firstDeployed;
  return {
    key: `${meta.namespace ?? ''}/${meta.name ?? ''}`,
    resourceVersion: meta.resourceVersion ?? '',
    namespace: meta.namespace ?? '',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    suspended: obj.spec?.suspend === true,
    labels: meta.labels ?? {},
    requestedAt: meta.annotations?.[FLUX_REQUESTED_AT],
    paused: meta.annotations?.[keys.trigger] === TRIGGER_DISABLED,
    stalled: (obj.status?.conditions ?? []).some((c) => c.type === 'Stalled' && c.status === 'True'),
    valuesFrom: (obj.spec?.valuesFrom ?? []).flatMap((ref): ValuesReference[] =>
      (ref.kind === 'ConfigMap' || ref.kind === 'Secret') && ref.name
        ? [{ kind: ref.kind, name: ref.name, valuesKey: ref.valuesKey || 'values.yaml', optional: ref.optional === true }]
        : [],
    ),
    lastRelease: deployedAt ? { deployedAt, status: latest?.status ?? '' } : undefined,
  };
}
