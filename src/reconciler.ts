// One source key -> read the cache -> decide -> patch targets -> record the digest. Level-triggered:
// everything it needs is in the cache and in the digest recorded on the source, so a restart or a
// dropped event loses nothing.
import { decide, type Plan, type TargetInput } from './decide.js';
import { encodeKeyDigests, parseKeyDigests } from './digest.js';
import { InvalidReferenceError, truncate } from './errors.js';
import type { EventRecorder, InvolvedObject } from './events.js';
import type { Keys } from './keys.js';
import type { KubeWriter } from './kube/client.js';
import { HELM_GROUP, HELM_VERSION } from './kube/client.js';
import { statusOf } from './kube/http.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Consumer, ValuesIndex } from './mapping/index.js';
import { type ObjectRef, parseTargets, refKey } from './mapping/targets.js';
import { FLUX_WATCH_LABEL, type ReleaseObject, type SourceObject } from './sources/objects.js';
import { formatRFC3339Nano, triggerPatch, type TriggerMode } from './trigger.js';

export interface ReconcilerOptions {
  keys: Keys;
  defaultNamespace: string;
  triggerMode: TriggerMode;
  values: ValuesIndex;
  /** HelmReleases reading a source through valuesFrom are its targets, named or not. */
  autodiscovery: boolean;
  /** Leave same-namespace valuesFrom consumers of reconcile.fluxcd.io/watch=Enabled sources to helm-controller. */
  deferToFluxWatch: boolean;
  getSource(key: string): SourceObject | undefined;
  getRelease(key: string): ReleaseObject | undefined;
  writer: KubeWriter;
  events: EventRecorder;
  metrics: Metrics;
  log: Logger;
  clock: () => bigint;
}

export type Outcome = 'done' | 'retry';

const shortDigest = (digest: string): string => digest.slice(0, 'sha256:'.length + 12);

function sourceObject(src: SourceObject): InvolvedObject {
  return { apiVersion: 'v1', kind: src.kind, namespace: src.namespace, name: src.name, uid: src.uid };
}

function releaseObject(release: ReleaseObject): InvolvedObject {
  return {
    apiVersion: `${HELM_GROUP}/${HELM_VERSION}`,
    kind: 'HelmRelease',
    namespace: release.namespace,
    name: release.name,
    uid: release.uid,
  };
}

export class Reconciler {
  /** source -> target -> digest triggered, for sources whose digest is not recorded yet. */
  private readonly triggered = new Map<string, Map<string, string>>();
  /** source -> what this process recorded, until the cache shows it. */
  private readonly recorded = new Map<string, { digest: string; keyDigests: Record<string, string> }>();
  /** source -> when a content change was first seen, for the latency histogram. */
  private readonly changeSeenAt = new Map<string, number>();
  /** source -> the invalid reference last reported, so it is reported once per object version. */
  private readonly reportedInvalid = new Map<string, string>();

  constructor(private readonly opts: ReconcilerOptions) {}

  noteChange(key: string): void {
    if (!this.changeSeenAt.has(key)) this.changeSeenAt.set(key, performance.now());
  }

  forgetSource(key: string): void {
    this.triggered.delete(key);
    this.recorded.delete(key);
    this.changeSeenAt.delete(key);
    this.reportedInvalid.delete(key);
  }

  async reconcile(key: string): Promise<Outcome> {
    const { keys, log } = this.opts;
    const src = this.opts.getSource(key);
    if (!src) {
      // Deleted or no longer labeled: deleting a source never triggers.
      this.forgetSource(key);
      return 'done';
    }
    const consumers = this.opts.values.consumersOf(key);
    let named: ObjectRef[];
    try {
      named = parseTargets(src.annotations, keys, this.opts.defaultNamespace);
      this.reportedInvalid.delete(key);
    } catch (err) {
      if (!(err instanceof InvalidReferenceError)) throw err;
      // A source that only autodiscovery knows about needs no names of its own.
      const discoveredOnly = err.value === undefined && this.opts.autodiscovery && consumers.length > 0;
      if (!discoveredOnly) {
        this.reportInvalid(key, src, err);
        return 'done';
      }
      named = [];
    }

    const memo = this.recorded.get(key);
    const onObject = { digest: src.annotations[keys.configDigest], keyDigests: parseKeyDigests(src.annotations[keys.keyDigests]) };
    const recorded = memo?.digest === src.digest ? memo : onObject;
    if (onObject.digest === src.digest) this.recorded.delete(key);
    const triggered = this.triggered.get(key);
    const plan = decide({
      digest: src.digest,
      recorded: recorded.digest,
      keyDigests: src.keyDigests,
      recordedKeyDigests: recorded.keyDigests,
      contentChangedAt: src.contentChangedAt,
      targets: this.targetsOf(src, named, consumers).map((t) => ({ ...t, triggeredDigest: triggered?.get(refKey(t.ref)) })),
    });
    if (plan.upToDate) {
      this.triggered.delete(key);
      this.changeSeenAt.delete(key);
      log.debug({ source: key, digest: src.digest }, 'content unchanged since last recorded');
      return 'done';
    }
    return this.carryOut(key, src, plan);
  }

  /** Named targets and valuesFrom consumers, each once; a consumer's keys narrow what counts as a change. */
  private targetsOf(src: SourceObject, named: readonly ObjectRef[], consumers: readonly Consumer[]): Omit<TargetInput, 'triggeredDigest'>[] {
    const byRef = new Map(consumers.map((c) => [refKey(c.ref), c]));
    const refs = new Map(named.map((ref) => [refKey(ref), ref]));
    if (this.opts.autodiscovery) for (const c of consumers) refs.set(refKey(c.ref), c.ref);
    return [...refs.values()].map((ref) => {
      const consumer = byRef.get(refKey(ref));
      return {
        ref,
        release: this.opts.getRelease(refKey(ref)),
        valuesKeys: consumer?.keys,
        // helm-controller watches only sources its releases read through valuesFrom, in their namespace.
        fluxWatches: this.opts.deferToFluxWatch && src.fluxWatch && consumer !== undefined,
      };
    });
  }

  private async carryOut(key: string, src: SourceObject, plan: Plan): Promise<Outcome> {
    const { log, events, metrics } = this.opts;
    let retry = false;
    for (const { ref, action } of plan.targets) {
      const release = this.opts.getRelease(refKey(ref));
      switch (action) {
        case 'trigger':
          if (release && (await this.trigger(src, release))) {
            let memo = this.triggered.get(key);
            if (!memo) this.triggered.set(key, (memo = new Map<string, string>()));
            memo.set(refKey(ref), src.digest);
            break;
          }
          // Deleted since the cache saw it: the same as missing.
          retry = true;
          this.reportMissing(src, ref);
          break;
        case 'missing':
          retry = true;
          this.reportMissing(src, ref);
          break;
        case 'suspended':
          log.info({ source: key, target: refKey(ref) }, 'target HelmRelease is suspended; will trigger it when resumed');
          break;
        case 'deferred':
          log.info({ source: key, target: refKey(ref) }, `left to helm-controller: the source is labeled ${FLUX_WATCH_LABEL}=Enabled`);
          break;
        case 'unchanged':
          log.debug({ source: key, target: refKey(ref) }, 'the keys this release reads are unchanged');
          break;
        case 'adopt':
        case 'done':
          break;
      }
    }
    if (!plan.record) return retry ? 'retry' : 'done';

    try {
      const keyDigests = Object.keys(plan.keyDigests).length > 0 ? encodeKeyDigests(plan.keyDigests) : null;
      await this.opts.writer.patchSource(src.kind, src.namespace, src.name, {
        metadata: { annotations: { [this.opts.keys.configDigest]: src.digest, [this.opts.keys.keyDigests]: keyDigests } },
      });
    } catch (err) {
      if (statusOf(err) === 404) {
        this.forgetSource(key);
        return 'done';
      }
      throw err;
    }
    this.recorded.set(key, { digest: src.digest, keyDigests: plan.keyDigests });
    this.triggered.delete(key);
    this.changeSeenAt.delete(key);
    const adopted = plan.targets.filter((t) => t.action === 'adopt').map((t) => refKey(t.ref));
    if (adopted.length > 0) {
      metrics.adoptions.inc();
      log.info({ source: key, digest: src.digest, targets: adopted }, 'adopted: releases are newer than the content; recorded the digest without triggering');
      events.emit(
        sourceObject(src),
        'Normal',
        'Adopted',
        `Recorded digest ${shortDigest(src.digest)} without triggering ${adopted.join(', ')}: the releases are newer than this content`,
      );
    }
    return retry ? 'retry' : 'done';
  }

  /** One merge patch of the release's annotations; false when the release is gone. */
  private async trigger(src: SourceObject, release: ReleaseObject): Promise<boolean> {
    const { triggerMode, metrics, log, events } = this.opts;
    const requestedAt = formatRFC3339Nano(this.opts.clock());
    try {
      await this.opts.writer.patchRelease(release.namespace, release.name, triggerPatch(triggerMode, requestedAt));
    } catch (err) {
      if (statusOf(err) === 404) return false;
      metrics.triggers.inc({ result: 'error', mode: triggerMode });
      throw err;
    }
    metrics.triggers.inc({ result: 'success', mode: triggerMode });
    const seen = this.changeSeenAt.get(src.key);
    if (seen !== undefined) metrics.triggerLatency.observe((performance.now() - seen) / 1000);
    const what = triggerMode === 'force' ? 'forced upgrade' : 'reconcile';
    log.info(
      { source: src.key, target: `${release.namespace}/${release.name}`, digest: src.digest, requestedAt, mode: triggerMode },
      `triggered HelmRelease (${what})`,
    );
    events.emit(
      releaseObject(release),
      'Normal',
      'Triggered',
      `${src.kind} ${src.namespace}/${src.name} changed (${shortDigest(src.digest)}): requested ${what} at ${requestedAt}`,
    );
    return true;
  }

  private reportMissing(src: SourceObject, ref: ObjectRef): void {
    this.opts.metrics.missingTargets.inc();
    this.opts.log.warn({ source: src.key, target: refKey(ref) }, 'target HelmRelease not found; will retry');
    this.opts.events.emit(
      sourceObject(src),
      'Warning',
      'TargetNotFound',
      `HelmRelease ${refKey(ref)} not found; will trigger it when it appears`,
    );
  }

  private reportInvalid(key: string, src: SourceObject, err: InvalidReferenceError): void {
    const fingerprint = `${src.resourceVersion}\u0000${err.message}`;
    if (this.reportedInvalid.get(key) === fingerprint) return;
    this.reportedInvalid.set(key, fingerprint);
    const reason = err.value === undefined ? 'missing' : 'invalid';
    this.opts.metrics.invalidReferences.inc({ kind: src.kind, reason });
    this.opts.log.warn(
      { source: key, annotation: err.annotation, value: err.value === undefined ? undefined : truncate(err.value) },
      `invalid target reference: ${err.message}`,
    );
    this.opts.events.emit(sourceObject(src), 'Warning', 'InvalidReference', err.message);
  }
}
