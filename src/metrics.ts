// Prometheus metrics. One registry per controller instance so several can run in one process (tests).
// Module by module: prom-client's index also loads what hrto never uses (Summary with its t-digest,
// the Pushgateway with zlib, the cluster aggregator), code held in memory for the process's life.
import Counter from 'prom-client/lib/counter.js';
import collectDefaultMetrics from 'prom-client/lib/defaultMetrics.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';
import type { ApiObserver } from './kube/api.js';

export interface Metrics {
  registry: Registry;
  triggers: Counter<'result' | 'mode'>;
  triggerLatency: Histogram;
  adoptions: Counter;
  invalidReferences: Counter<'kind' | 'reason'>;
  missingTargets: Counter;
  reconciles: Counter<'queue' | 'result'>;
  queueDepth: Gauge<'queue'>;
  queueRetries: Counter<'queue'>;
  watchedSources: Gauge<'kind'>;
  watchedReleases: Gauge;
  cacheSynced: Gauge<'informer'>;
  watchErrors: Counter<'informer'>;
  discoveryPatches: Counter<'result'>;
  leader: Gauge;
  throttleWait: Histogram;
  fluxEventPosts: Counter<'result'>;
  heldReleases: Gauge<'reason'>;
  oldestHold: Gauge;
  holdSteps: Counter<'step'>;
  upgradesInFlight: Gauge;
  rolloutsHalted: Counter;
  invalidRollouts: Counter;
  /** Permissions the startup access check found missing for an optional feature, which runs off. */
  missingPermissions: Gauge<'verb' | 'resource' | 'namespace' | 'feature'>;
  /** Every request to the API server, for KubeApi: rest_client_* like client-go's. */
  api: ApiObserver;
  /** The controller's state gauges are read from this at scrape time: nothing samples in between. */
  observe(probe: StateProbe): void;
}

/** The controller's state, read when /metrics is scraped. */
export interface StateProbe {
  queueDepths(): Iterable<readonly [queue: string, depth: number]>;
  watchedSources(): Iterable<readonly [kind: string, count: number]>;
  watchedReleases(): number;
  informersSynced(): Iterable<readonly [informer: string, synced: boolean]>;
  leader(): boolean;
  /** HelmReleases hrto holds suspended now, by the reason they were held for. */
  heldReleases(): Iterable<readonly [reason: string, count: number]>;
  /** Seconds the oldest hold has lasted (0: none). */
  oldestHoldSeconds(): number;
  /** Triggered HelmReleases whose upgrade has not finished (tracked with waves or --max-upgrades-in-flight). */
  upgradesInFlight(): number;
}

export function createMetrics(options: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  // The event-loop delay histogram samples every 100 ms: at prom-client's default 10 ms, its timer alone
  // costs more idle CPU than everything else hrto does.
  if (options.processMetrics) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  let probe: StateProbe | undefined;
  // client-go's buckets, so dashboards built for controller-runtime's rest_client_* read these alike.
  const restBuckets = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];
  const restRequests = new Counter({
    name: 'rest_client_requests_total',
    help: 'Requests to the API server, by verb, resource and HTTP status code ("<error>": no answer).',
    labelNames: ['verb', 'resource', 'code'],
    registers,
  });
  const restHistogram = (name: string, help: string): Histogram<'verb' | 'resource'> =>
    new Histogram({ name, help, labelNames: ['verb', 'resource'], buckets: restBuckets, registers });
  const restLatency = restHistogram('rest_client_request_duration_seconds', 'Request latency to the API server (a watch: until its response headers), by verb and resource.');
  const restLimiter = restHistogram(
    'rest_client_rate_limiter_duration_seconds',
    'Time requests waited for the client-side rate limit (--kube-api-qps, --kube-api-burst), by verb and resource.',
  );
  return {
    registry,
    observe: (p) => {
      probe = p;
    },
    triggers: new Counter({
      name: 'hrto_triggers_total',
      help: 'HelmRelease trigger patches, by result (success, error, dry-run) and mode (force, reconcile).',
      labelNames: ['result', 'mode'],
      registers,
    }),
    triggerLatency: new Histogram({
      name: 'hrto_trigger_latency_seconds',
      help: 'Time from a source change seen by hrto to the trigger patch accepted by the API server.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    adoptions: new Counter({
      name: 'hrto_adoptions_total',
      help: 'Sources seen for the first time whose digest was recorded without a trigger.',
      registers,
    }),
    invalidReferences: new Counter({
      name: 'hrto_invalid_references_total',
      help: 'Reconciles refused because a source names its targets wrongly, by source kind and reason.',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    missingTargets: new Counter({
      name: 'hrto_missing_targets_total',
      help: 'Reconciles that found a target HelmRelease missing.',
      registers,
    }),
    reconciles: new Counter({
      name: 'hrto_reconciles_total',
      help: 'Reconciles by queue (trigger: source content; autodiscovery: source marks) and result (success, requeue, error).',
      labelNames: ['queue', 'result'],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'hrto_queue_depth',
      help: 'Keys waiting in a work queue, by queue.',
      labelNames: ['queue'],
      registers,
      collect() {
        for (const [queue, depth] of probe?.queueDepths() ?? []) this.set({ queue }, depth);
      },
    }),
    queueRetries: new Counter({
      name: 'hrto_queue_retries_total',
      help: 'Keys requeued with backoff, by queue.',
      labelNames: ['queue'],
      registers,
    }),
    watchedSources: new Gauge({
      name: 'hrto_watched_sources',
      help: 'Labeled sources in the cache, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const [kind, count] of probe?.watchedSources() ?? []) this.set({ kind }, count);
      },
    }),
    heldReleases: new Gauge({
      name: 'hrto_held_releases',
      help: 'HelmReleases hrto holds suspended so that helm-controller does not apply a held change, by reason (window, wave, step, max-update, unselected, halted, invalid, in-flight).',
      labelNames: ['reason'],
      registers,
      collect() {
        if (!probe) return;
        this.reset();
        for (const [reason, count] of probe.heldReleases()) this.set({ reason }, count);
      },
    }),
    oldestHold: new Gauge({
      name: 'hrto_oldest_hold_seconds',
      help: 'How long the oldest hold (a HelmRelease hrto keeps suspended) has lasted; 0 when none.',
      registers,
      collect() {
        if (probe) this.set(probe.oldestHoldSeconds());
      },
    }),
    holdSteps: new Counter({
      name: 'hrto_hold_steps_total',
      help: 'Writes of a hold: suspend, remark, lift, override (someone else lifted hrto\'s suspension), unmark.',
      labelNames: ['step'],
      registers,
    }),
    upgradesInFlight: new Gauge({
      name: 'hrto_upgrades_in_flight',
      help: 'Triggered HelmReleases whose upgrade has not finished (waved ones, or all with --max-upgrades-in-flight).',
      registers,
      collect() {
        if (probe) this.set(probe.upgradesInFlight());
      },
    }),
    rolloutsHalted: new Counter({
      name: 'hrto_rollouts_halted_total',
      help: 'Rollouts of a source change halted because a HelmRelease of a lower wave failed.',
      registers,
    }),
    invalidRollouts: new Counter({
      name: 'hrto_invalid_rollout_annotations_total',
      help: 'HelmReleases held because their wave or trigger windows cannot be read (fail closed).',
      registers,
    }),
    missingPermissions: new Gauge({
      name: 'hrto_missing_permissions',
      help: '1 for each permission the startup access check found missing, by verb, resource, namespace ("*": cluster-wide) and the feature it turned off.',
      labelNames: ['verb', 'resource', 'namespace', 'feature'],
      registers,
    }),
    watchedReleases: new Gauge({
      name: 'hrto_watched_helmreleases',
      help: 'HelmReleases in the cache.',
      registers,
      collect() {
        if (probe) this.set(probe.watchedReleases());
      },
    }),
    cacheSynced: new Gauge({
      name: 'hrto_cache_synced',
      help: '1 when the informer has listed its objects.',
      labelNames: ['informer'],
      registers,
      collect() {
        for (const [informer, synced] of probe?.informersSynced() ?? []) this.set({ informer }, synced ? 1 : 0);
      },
    }),
    watchErrors: new Counter({
      name: 'hrto_watch_errors_total',
      help: 'List or watch failures, by informer.',
      labelNames: ['informer'],
      registers,
    }),
    throttleWait: new Histogram({
      name: 'hrto_throttle_wait_seconds',
      help: 'How long a due trigger waited for the global --max-triggers-per-second throttle.',
      buckets: [0, 0.1, 0.5, 1, 5, 15, 60, 300, 900],
      registers,
    }),
    leader: new Gauge({
      name: 'hrto_leader',
      help: '1 while this instance is the leader (always 1 without leader election).',
      registers,
      collect() {
        if (probe) this.set(probe.leader() ? 1 : 0);
      },
    }),
    fluxEventPosts: new Counter({
      name: 'hrto_flux_event_posts_total',
      help: 'Events posted to --events-addr, by result (success, duplicate: refused by its rate limit as a repeat, failed, dropped: the queue was full).',
      labelNames: ['result'],
      registers,
    }),
    api: {
      requestDone: ({ verb, resource }, code, seconds) => {
        restRequests.inc({ verb, resource, code });
        restLatency.observe({ verb, resource }, seconds);
      },
      rateLimited: ({ verb, resource }, seconds) => restLimiter.observe({ verb, resource }, seconds),
    },
    discoveryPatches: new Counter({
      name: 'hrto_discovery_patches_total',
      help: 'Autodiscovery patches of source labels and annotations, by result (success, conflict, error).',
      labelNames: ['result'],
      registers,
    }),
  };
}
