// What the Flux end-to-end tests read: every state of a namespace's HelmReleases as a watch saw
// it (with when), hrto's HelmRelease patches as the API server's audit log recorded them (with their
// bodies: a trigger sets requestedAt, a hold spec.suspend), and what a demo release renders.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import { type Cached, Informer } from '../../src/sources/informer.js';
import { REQUESTED_AT } from './hrto.js';
import { api, type AuditEvent, auditEvents, auditLogPath, core } from './support.js';

export const onTestControlPlane = { skip: auditLogPath ? false : 'starts Flux controllers and reads the audit log: needs the test control plane' };

export const WAVE = 'uburro.github.com/wave';
export const ROLLOUT = 'uburro.github.com/rollout';
export const HOLD = 'uburro.github.com/suspended-by';
export const WINDOWS = 'uburro.github.com/trigger-windows';
export const SOURCE = 'values';
/** Release name -> wave, in wave order. */
export const RELEASES: readonly (readonly [string, number])[] = [
  ['w1-a', 1],
  ['w1-b', 1],
  ['w2-a', 2],
  ['w2-b', 2],
  ['w3-a', 3],
  ['w3-b', 3],
];
export const NAMES_OF = (wave: number): string[] => RELEASES.filter(([, w]) => w === wave).map(([name]) => name);
export const ALL = RELEASES.map(([name]) => name);
/** One wave: a forced upgrade of a one-ConfigMap chart takes seconds; three waves well within this. */
export const ROLLOUT_TIMEOUT = 180_000;
/** How long a halted rollout is watched for a patch it must never make. */
export const SETTLE_MS = 20_000;

// --- what the watch saw of each HelmRelease ------------------------------------------------------

export interface Condition {
  status: string;
  reason: string;
  observedGeneration?: number;
}

export interface Seen extends Cached {
  name: string;
  /** When the watch delivered this state (this process's clock, as the audit log's). */
  at: number;
  generation: number;
  requestedAt?: string;
  rollout?: string;
  lastHandledReconcileAt?: string;
  failures: number;
  ready?: Condition;
  reconciling?: Condition;
  stalled?: Condition;
  latest?: { version: number; status: string; action?: string; configDigest?: string; lastDeployed?: string };
  lastAttemptedConfigDigest?: string;
  /** spec.suspend. */
  suspend: boolean;
  /** hrto's hold mark. */
  hold?: string;
}

export function seen(raw: Record<string, unknown>): Seen {
  const meta = (raw.metadata ?? {}) as { name?: string; resourceVersion?: string; generation?: number; annotations?: Record<string, string> };
  const spec = (raw.spec ?? {}) as { suspend?: boolean };
  const status = (raw.status ?? {}) as {
    lastHandledReconcileAt?: string;
    failures?: number;
    conditions?: (Condition & { type: string })[];
    history?: { version: number; status: string; action?: string; configDigest?: string; lastDeployed?: string }[];
    lastAttemptedConfigDigest?: string;
  };
  const condition = (type: string): Condition | undefined => {
    const c = status.conditions?.find((x) => x.type === type);
    return c && { status: c.status, reason: c.reason, ...(c.observedGeneration === undefined ? {} : { observedGeneration: c.observedGeneration }) };
  };
  const latest = status.history?.[0];
  return {
    key: meta.name ?? '',
    name: meta.name ?? '',
    resourceVersion: meta.resourceVersion ?? '',
    at: Date.now(),
    generation: meta.generation ?? 0,
    requestedAt: meta.annotations?.[REQUESTED_AT],
    rollout: meta.annotations?.[ROLLOUT],
    lastHandledReconcileAt: status.lastHandledReconcileAt,
    failures: status.failures ?? 0,
    ready: condition('Ready'),
    reconciling: condition('Reconciling'),
    stalled: condition('Stalled'),
    latest: latest && { version: latest.version, status: latest.status, action: latest.action, configDigest: latest.configDigest, lastDeployed: latest.lastDeployed },
    lastAttemptedConfigDigest: status.lastAttemptedConfigDigest,
    suspend: spec.suspend === true,
    hold: meta.annotations?.[HOLD],
  };
}

/** Every state of the namespace's HelmReleases the watch delivered, in order, with when. */
export class ReleaseWatch {
  readonly states = new Map<string, Seen[]>();
  private informer?: Informer<Seen>;

  static async start(namespace: string): Promise<ReleaseWatch> {
    const watch = new ReleaseWatch();
    const informer = new Informer<Seen>({
      name: `test-rollout[${namespace}]`,
      api,
      path: `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${namespace}/helmreleases`,
      log: createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })),
      transform: (raw) => seen(raw),
    });
    const record = (s: Seen): void => {
      const list = watch.states.get(s.name) ?? [];
      list.push(s);
      watch.states.set(s.name, list);
    };
    informer.addHandlers({ add: record, update: (_old, s) => record(s) });
    informer.start();
    await informer.waitForSync();
    watch.informer = informer;
    return watch;
  }

  current(name: string): Seen | undefined {
    return this.states.get(name)?.at(-1);
  }

  /** The first state after `since` that `match` accepts. */
  first(name: string, since: number, match: (s: Seen) => boolean): Seen | undefined {
    return this.states.get(name)?.find((s) => s.at >= since && match(s));
  }

  /** A release's states since a time, one compact line each: the failure message of a test. */
  timeline(name: string, since: number): string {
    return (this.states.get(name) ?? [])
      .filter((s) => s.at >= since)
      .map((s) =>
        JSON.stringify({
          t: s.at - since,
          req: s.requestedAt,
          handled: s.lastHandledReconcileAt,
          f: s.failures,
          ready: s.ready && `${s.ready.status}/${s.ready.reason}@${s.ready.observedGeneration}`,
          reconciling: s.reconciling && `${s.reconciling.status}/${s.reconciling.reason}`,
          stalled: s.stalled?.status,
          latest: s.latest && `v${s.latest.version} ${s.latest.status} ${s.latest.action ?? ''}`,
          attempted: s.lastAttemptedConfigDigest?.slice(7, 19),
          suspend: s.suspend || undefined,
          hold: s.hold,
        }),
      )
      .join('\n');
  }

  async stop(): Promise<void> {
    await this.informer?.shutdown();
  }
}

/** What a release was before a change: its newest revision, failures and reconcile request. */
export interface Baseline {
  version: number;
  failures: number;
  requestedAt: string | undefined;
}

export function baselines(watch: ReleaseWatch): Map<string, Baseline> {
  return new Map(
    ALL.map((name) => {
      const s = watch.current(name);
      assert.ok(s, `the watch has seen ${name}`);
      return [name, { version: s.latest?.version ?? 0, failures: s.failures, requestedAt: s.requestedAt }];
    }),
  );
}

/** Triggered anew since the baseline, and helm-controller reports that trigger upgraded and Ready. */
export function upgradedAndReady(s: Seen, base: Baseline): boolean {
  return (
    s.requestedAt !== undefined &&
    s.requestedAt !== base.requestedAt &&
    s.lastHandledReconcileAt === s.requestedAt &&
    (s.latest?.version ?? 0) > base.version &&
    s.latest?.status === 'deployed' &&
    s.ready?.status === 'True' &&
    s.ready.observedGeneration === s.generation
  );
}

/** Triggered anew since the baseline, and helm-controller reports the upgrade failed. */
export function upgradeFailed(s: Seen, base: Baseline): boolean {
  return (
    s.requestedAt !== undefined &&
    s.requestedAt !== base.requestedAt &&
    s.lastHandledReconcileAt === s.requestedAt &&
    (s.failures > base.failures || (s.ready?.status === 'False' && s.ready.reason === 'UpgradeFailed'))
  );
}

// --- what the API server recorded ----------------------------------------------------------------

/** hrto's patches of HelmReleases received since `since`, each with its body. */
export function hrtoReleasePatches(ns: string, since: number): AuditEvent[] {
  return auditEvents(ns).filter(
    (e) =>
      e.verb === 'patch' &&
      e.objectRef?.resource === 'helmreleases' &&
      e.objectRef.subresource === undefined &&
      e.userAgent?.startsWith('hrto/') &&
      (e.responseStatus?.code ?? 0) < 300 &&
      Date.parse(e.requestReceivedTimestamp) >= since,
  );
}

export const isTrigger = (e: AuditEvent): boolean => typeof e.requestObject?.metadata?.annotations?.[REQUESTED_AT] === 'string';

/** hrto's trigger patches of HelmReleases (they set requestedAt) received since `since`, by release, oldest first. */
export function triggerPatches(ns: string, since: number): Map<string, string[]> {
  const byRelease = new Map<string, string[]>();
  for (const e of hrtoReleasePatches(ns, since)) {
    if (!isTrigger(e)) continue;
    const list = byRelease.get(e.objectRef!.name!) ?? [];
    list.push(e.requestReceivedTimestamp);
    byRelease.set(e.objectRef!.name!, list);
  }
  for (const list of byRelease.values()) list.sort();
  return byRelease;
}

/** When the API server received the first trigger of any release of the wave (asserted to exist). */
export function firstPatchOf(patches: Map<string, string[]>, wave: number): string {
  const first = NAMES_OF(wave)
    .map((name) => patches.get(name)?.[0])
    .filter((p): p is string => p !== undefined)
    .sort()[0];
  assert.ok(first, `wave ${wave} was patched`);
  return first;
}

/**
 * When the API server received the helm-controller status write that the watch saw a state in: the
 * newest status write of the release received no later than the watch delivered it. (The write that
 * produced the state came before its watch event, so this is that write or, rarely, a later one.)
 * Audit timestamps have microseconds and one format: they compare as strings.
 */
export function statusWrittenAt(ns: string, name: string, watchedAt: number): string {
  const writes = auditEvents(ns)
    .filter(
      (e) =>
        (e.verb === 'patch' || e.verb === 'update') &&
        e.objectRef?.resource === 'helmreleases' &&
        e.objectRef.name === name &&
        e.objectRef.subresource === 'status' &&
        Date.parse(e.requestReceivedTimestamp) <= watchedAt,
    )
    .map((e) => e.requestReceivedTimestamp)
    .sort();
  const last = writes.at(-1);
  assert.ok(last, `an audited status write of ${name} before the watch saw it Ready`);
  return last;
}

// --- fixtures ------------------------------------------------------------------------------------

export async function rendered(ns: string, release: string): Promise<string | undefined> {
  const cm = await core.readNamespacedConfigMap({ namespace: ns, name: `${release}-rendered` }).catch(() => undefined);
  return cm?.data?.message;
}
