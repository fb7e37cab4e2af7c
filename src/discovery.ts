// Autodiscovery: one source key -> the HelmReleases reading it through valuesFrom (from the cache)
// -> the marks it should carry -> one merge patch. Level-triggered like the reconciler: the marks
// are computed from the caches and the source's own record, so a restart or a missed event only
// delays them.
import type { EventRecorder } from './events.js';
import type { Keys } from './keys.js';
import type { KubeWriter } from './kube/client.js';
import { statusOf } from './kube/api.js';
import type { Logger } from './log.js';
import type { ValuesIndex } from './mapping/index.js';
import type { ObjectRef } from './mapping/targets.js';
import { type MarkState, planMarks } from './mapping/marks.js';
import type { Metrics } from './metrics.js';
import type { SourceKind, SourceObject } from './sources/objects.js';

export interface DiscovererOptions {
  keys: Keys;
  defaultNamespace: string;
  values: ValuesIndex;
  /** HelmReleases outside --helmrelease-label-selector are not marked for. */
  consumerInScope(ref: ObjectRef): boolean;
  /** Sources outside --watch-label-selector belong to another instance (or none). */
  sourceInScope(labels: Readonly<Record<string, string>>): boolean;
  getSource(key: string): SourceObject | undefined;
  writer: KubeWriter;
  events: EventRecorder;
  metrics: Metrics;
  log: Logger;
}

/** done: marks are right; retry: try again with backoff (conflict, or a referenced source not there yet). */
export type MarkOutcome = 'done' | 'retry';

export class Discoverer {
  /** source -> the conflict last reported, so it is reported once, not on every resync. */
  private readonly reported = new Map<string, string>();

  constructor(private readonly opts: DiscovererOptions) {}

  async reconcile(key: string): Promise<MarkOutcome> {
    const { keys, log, metrics } = this.opts;
    const [kind, namespace = '', name = ''] = key.split('/') as [SourceKind, string, string];
    const consumers = this.opts.values
      .consumersOf(key)
      .filter((c) => this.opts.consumerInScope(c.ref))
      .map((c) => c.ref.name);
    const state = await this.state(kind, namespace, name);
    if (state === 'elsewhere') {
      log.debug({ source: key }, 'source outside --watch-label-selector; left to the instance it belongs to');
      return 'done';
    }
    if (!state) {
      // Not there (yet): a source created after its HelmRelease is marked when it appears.
      if (consumers.length > 0) log.debug({ source: key, consumers }, 'referenced source not found; will look again');
      this.reported.delete(key);
      return consumers.length > 0 ? 'retry' : 'done';
    }
    const plan = planMarks(state.mark, consumers, keys, this.opts.defaultNamespace);
    if (plan.optedOut) {
      log.debug({ source: key, label: keys.watchLabel, value: state.mark.label }, 'source opted out of autodiscovery by its watch label');
      return 'done';
    }
    this.reportConflict(key, kind, namespace, name, state.uid, plan.conflict);
    if (!plan.patch) return 'done';
    plan.patch.metadata.resourceVersion = state.resourceVersion;
    try {
      await this.opts.writer.patchSource(kind, namespace, name, plan.patch);
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return consumers.length > 0 ? 'retry' : 'done';
      // 409: the object changed since it was read; read it again.
      metrics.discoveryPatches.inc({ result: status === 409 ? 'conflict' : 'error' });
      if (status === 409) return 'retry';
      throw err;
    }
    metrics.discoveryPatches.inc({ result: 'success' });
    log.info(
      { source: key, consumers, labels: plan.patch.metadata.labels, annotations: plan.patch.metadata.annotations },
      consumers.length > 0 ? 'marked source read by HelmReleases through valuesFrom' : 'removed autodiscovery marks: no HelmRelease reads this source any more',
    );
    return 'done';
  }

  /** From the cache when the source is watched; otherwise its metadata from the API server. */
  private async state(
    kind: SourceKind,
    namespace: string,
    name: string,
  ): Promise<{ mark: MarkState; resourceVersion: string; uid: string } | 'elsewhere' | undefined> {
    const { keys } = this.opts;
    const cached = this.opts.getSource(`${kind}/${namespace}/${name}`);
    if (cached) {
      return { mark: { namespace, label: 'true', annotations: cached.annotations }, resourceVersion: cached.resourceVersion, uid: cached.uid };
    }
    const meta = await this.opts.writer.getSourceMetadata(kind, namespace, name);
    if (!meta) return undefined;
    if (!this.opts.sourceInScope(meta.labels)) return 'elsewhere';
    const prefix = `${keys.domain}/`;
    const annotations = Object.fromEntries(Object.entries(meta.annotations).filter(([k]) => k.startsWith(prefix)));
    return { mark: { namespace, label: meta.labels[keys.watchLabel], annotations }, resourceVersion: meta.resourceVersion, uid: meta.uid };
  }

  private reportConflict(key: string, kind: SourceKind, namespace: string, name: string, uid: string, conflict: string | undefined): void {
    if (!conflict) {
      this.reported.delete(key);
      return;
    }
    if (this.reported.get(key) === conflict) return;
    this.reported.set(key, conflict);
    this.opts.log.warn({ source: key, reason: conflict }, 'cannot name discovered HelmReleases in the source annotations; triggering them anyway');
    this.opts.events.emit({ apiVersion: 'v1', kind, namespace, name, uid }, 'Warning', 'DiscoveryConflict', `${conflict}; hrto triggers them without naming them`, { source: key });
  }
}
