// What hrto caches of each watched object: metadata it decides on and a content digest, never the
// content itself (so a Secret's values are not held in memory after the digest is computed).
import { contentDigest, type ContentSections, keyDigests } from '../digest.js';
import { FLUX_REQUESTED_AT, type Keys, keysFor, TRIGGER_DISABLED } from '../keys.js';
import type { Cached, RawObject } from './informer.js';
import { holdState, parseHoldMark } from '../rollout/hold.js';
import { parseRolloutRecord } from '../rollout/health.js';

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
  /** Suspended by someone else than hrto (spec.suspend without hrto's mark): it cannot act. */
  suspended: boolean;
  /** spec.suspend as it is, whoever set it. */
  suspend: boolean;
  /** Raw `<domain>/suspended-by`: hrto's mark of a hold (see rollout/hold.ts). */
  holdMark?: string | undefined;
  /** The field manager that last wrote spec.suspend; read only while a mark is on the release. */
  suspendManager?: string | undefined;
  /** The cluster it installs into: its spec.kubeConfig Secret (hub and spoke), or undefined: its own. */
  cluster?: string | undefined;
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
  // The rollout's facts. Optional only so that objects built by hand (tests) need not name them all;
  // toRelease always sets them.
  /** metadata.generation (0 when absent). */
  generation?: number;
  /** Raw `<domain>/wave`, validated where it is used. */
  wave?: string;
  /** Raw `<domain>/trigger-windows` (JSON), validated where it is used. */
  triggerWindows?: string;
  /** Raw `<domain>/rollout-now`. */
  rolloutNow?: string;
  /** Raw `<domain>/rollout`: hrto's record of its last trigger (see rollout/health.ts). */
  rolloutRecord?: string;
  /** That record asks for the trigger's outcome to be read (a step of a source's rollout plan): the status is kept. */
  tracked?: boolean;
  /** status.lastHandledReconcileAt: the last requestedAt a finished reconcile saw (not that it worked). */
  lastHandledReconcileAt?: string;
  /** status.lastAttemptedConfigDigest: digest of the merged values of the last attempt. */
  lastAttemptedConfigDigest?: string;
  /** status.failures (0 when absent). */
  failures?: number;
  /** spec.test.enable. */
  testEnabled?: boolean;
  /** The highest status.history version (0: none): kept for every release, a record or a hold notes it. */
  version?: number;
  /** The history entry with the highest version (helm-controller keeps it first). */
  newest?: HistoryEntry;
  /** Highest version of a history entry that failed or is a rollback; 0 if none. */
  badVersion?: number;
  /** The conditions the health reading needs; absent ones are undefined. */
  conditions?: ReleaseConditions;
}

/** The scalars of one status.history snapshot the health reading needs. */
export interface HistoryEntry {
  version: number;
  /** deployed, failed, superseded, pending-upgrade, ... */
  status: string;
  /** install, upgrade, rollback; '' when helm-controller recorded none. */
  action: string;
  configDigest: string;
  /** When Helm deployed it (epoch ms): a step's bake counts from there. */
  deployedAt: number | undefined;
}

/** One status condition, its message shortened. */
export interface ConditionFacts {
  /** 'True', 'False' or 'Unknown'. */
  status: string;
  reason: string;
  message: string;
  observedGeneration: number;
  /** lastTransitionTime (epoch ms): whether a release turned unhealthy during its bake. */
  since: number | undefined;
}

export interface ReleaseConditions {
  ready: ConditionFacts | undefined;
  reconciling: ConditionFacts | undefined;
  stalled: ConditionFacts | undefined;
  testSuccess: ConditionFacts | undefined;
  released: ConditionFacts | undefined;
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
    const digest = contentDigest(content);
    return {
      key: sourceKey(kind, namespace, name),
      resourceVersion: meta.resourceVersion ?? '',
      kind,
      namespace,
      name,
      uid: meta.uid ?? '',
      annotations: ownAnnotations(meta.annotations, keys),
      digest,
      keyDigests: keyDigests(content, digest),
      fluxWatch: meta.labels?.[FLUX_WATCH_LABEL] === 'Enabled',
      contentChangedAt: contentChangedAt(meta),
    };
  };
}

interface ConditionRaw {
  type?: string;
  lastTransitionTime?: string;
  status?: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
}

interface SnapshotRaw {
  lastDeployed?: string;
  firstDeployed?: string;
  status?: string;
  version?: number;
  action?: string;
  configDigest?: string;
}

interface ReleaseRaw {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    managedFields?: ManagedFieldsEntry[];
  };
  spec?: {
    suspend?: boolean;
    kubeConfig?: { secretRef?: { name?: string } };
    valuesFrom?: { kind?: string; name?: string; valuesKey?: string; optional?: boolean }[];
    test?: { enable?: boolean };
  };
  status?: {
    history?: SnapshotRaw[];
    conditions?: ConditionRaw[];
    lastHandledReconcileAt?: string;
    lastAttemptedConfigDigest?: string;
    failures?: number;
  };
}

/** Longest condition message kept: Helm's errors can be long, and the cache holds every release. */
export const CONDITION_MESSAGE_MAX = 160;

function shortMessage(message: string | undefined): string {
  if (!message) return '';
  let flat = message.slice(0, CONDITION_MESSAGE_MAX * 2).replace(/\s+/g, ' ').trim();
  if (flat.length > CONDITION_MESSAGE_MAX) flat = `${flat.slice(0, CONDITION_MESSAGE_MAX - 1)}…`;
  // V8 may keep a cut string as a view of the whole original: copy it so the long message can go.
  return flat.length < message.length ? Buffer.from(flat, 'utf8').toString('utf8') : flat;
}

const time = (t: unknown): number | undefined => {
  const ms = typeof t === 'string' ? Date.parse(t) : NaN;
  return Number.isNaN(ms) ? undefined : ms;
};
const count = (n: unknown): number => (typeof n === 'number' && Number.isFinite(n) ? n : 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function conditionFacts(all: ConditionRaw[], type: string): ConditionFacts | undefined {
  const c = all.find((x) => x?.type === type);
  if (!c) return undefined;
  return { status: str(c.status), reason: str(c.reason), message: shortMessage(c.message), observedGeneration: count(c.observedGeneration), since: time(c.lastTransitionTime) };
}

const BAD_SNAPSHOT = (s: SnapshotRaw): boolean => s.status === 'failed' || s.action === 'rollback';

/** The newest entry (highest version) and the highest version of a failed or rolled-back entry. */
function historyFacts(history: SnapshotRaw[]): { newest: HistoryEntry | undefined; badVersion: number } {
  let newest: SnapshotRaw | undefined;
  let badVersion = 0;
  for (const s of history) {
    if (!s) continue;
    const version = count(s.version);
    if (!newest || version > count(newest.version)) newest = s;
    if (BAD_SNAPSHOT(s) && version > badVersion) badVersion = version;
  }
  return {
    newest: newest && {
      version: count(newest.version),
      status: str(newest.status),
      action: str(newest.action),
      configDigest: str(newest.configDigest),
      deployedAt: time(newest.lastDeployed ?? newest.firstDeployed),
    },
    badVersion,
  };
}

/**
 * What a trigger's record and a hold's mark note of every release before they write (the newest
 * revision, the failure count, the values last attempted): a source's plan may order any release,
 * so these few scalars are kept for all; the rest of the status only for tracked releases.
 */
function baselineFacts(obj: ReleaseRaw, history: ReturnType<typeof historyFacts>): Pick<ReleaseObject, 'generation' | 'failures' | 'lastAttemptedConfigDigest' | 'version'> {
  const status = obj.status ?? {};
  return {
    generation: count(obj.metadata?.generation),
    lastAttemptedConfigDigest: status.lastAttemptedConfigDigest || undefined,
    failures: count(status.failures),
    version: history.newest?.version ?? 0,
  };
}

/** What the health reading of a trigger needs of a release besides its baseline: scalars only. */
function outcomeFacts(obj: ReleaseRaw, conditions: ConditionRaw[], { newest, badVersion }: ReturnType<typeof historyFacts>): Partial<ReleaseObject> {
  const status = obj.status ?? {};
  return {
    lastHandledReconcileAt: status.lastHandledReconcileAt || undefined,
    testEnabled: obj.spec?.test?.enable === true,
    newest,
    badVersion,
    conditions: {
      ready: conditionFacts(conditions, 'Ready'),
      reconciling: conditionFacts(conditions, 'Reconciling'),
      stalled: conditionFacts(conditions, 'Stalled'),
      testSuccess: conditionFacts(conditions, 'TestSuccess'),
      released: conditionFacts(conditions, 'Released'),
    },
  };
}

/** The manager of the newest managedFields entry owning spec.suspend. */
export function suspendManager(managed: readonly ManagedFieldsEntry[] | undefined): string | undefined {
  let latest: ManagedFieldsEntry | undefined;
  for (const entry of managed ?? []) {
    const spec = entry.fieldsV1?.['f:spec'];
    if (typeof spec !== 'object' || spec === null || !('f:suspend' in spec)) continue;
    if (!latest || Date.parse(entry.time ?? '') >= Date.parse(latest.time ?? '')) latest = entry;
  }
  return latest?.manager;
}

/**
 * `trackAll` (--max-upgrades-in-flight): every trigger's outcome is read, so every release keeps the
 * facts; otherwise only waved releases and those hrto recorded a trigger on.
 */
export function toRelease(raw: RawObject, keys: Keys = keysFor(), trackAll = false): ReleaseObject {
  const obj = raw as ReleaseRaw;
  const meta = obj.metadata ?? {};
  const status = obj.status ?? {};
  const annotations = meta.annotations ?? {};
  const latest = status.history?.[0];
  const deployedAt = latest?.lastDeployed ?? latest?.firstDeployed;
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  const suspend = obj.spec?.suspend === true;
  const holdMark = annotations[keys.suspendedBy];
  const held = parseHoldMark(holdMark);
  const rolloutRecord = annotations[keys.rolloutRecord];
  const history = historyFacts(Array.isArray(status.history) ? status.history : []);
  const tracked = rolloutRecord !== undefined && parseRolloutRecord(rolloutRecord)?.track === true;
  return {
    key: `${meta.namespace ?? ''}/${meta.name ?? ''}`,
    resourceVersion: meta.resourceVersion ?? '',
    namespace: meta.namespace ?? '',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    suspended: holdState(suspend, held) === 'person',
    suspend,
    holdMark,
    suspendManager: holdMark === undefined ? undefined : suspendManager(meta.managedFields),
    cluster: obj.spec?.kubeConfig?.secretRef?.name || undefined,
    labels: meta.labels ?? {},
    requestedAt: annotations[FLUX_REQUESTED_AT],
    paused: annotations[keys.trigger] === TRIGGER_DISABLED,
    stalled: conditions.some((c) => c?.type === 'Stalled' && c.status === 'True'),
    valuesFrom: (obj.spec?.valuesFrom ?? []).flatMap((ref): ValuesReference[] =>
      (ref.kind === 'ConfigMap' || ref.kind === 'Secret') && ref.name
        ? [{ kind: ref.kind, name: ref.name, valuesKey: ref.valuesKey || 'values.yaml', optional: ref.optional === true }]
        : [],
    ),
    lastRelease: deployedAt ? { deployedAt, status: latest?.status ?? '' } : undefined,
    wave: annotations[keys.wave],
    triggerWindows: annotations[keys.triggerWindows],
    rolloutNow: annotations[keys.rolloutNow],
    rolloutRecord,
    tracked,
    ...baselineFacts(obj, history),
    // The rest is read for a trigger's outcome only: none of it is kept for the other releases.
    ...(trackAll || tracked || annotations[keys.wave] !== undefined || annotations[keys.triggerWindows] !== undefined || holdMark !== undefined ? outcomeFacts(obj, conditions, history) : {}),
  };
}
