// Wires the data flow: informer event -> key in a rate-limited queue -> worker -> reconciler.
// Three queues, one way: sources (decide what to trigger), HelmReleases (the trigger itself, after
// debounce and minimum interval) and autodiscovery marks. Only the leader runs workers.
import { hostname } from 'node:os';
import type { Config } from './config.js';
import { Discoverer } from './discovery.js';
import { NotLeaderError } from './errors.js';
import { EventRecorder } from './events.js';
import { FluxEventPoster } from './flux-events.js';
import { keysFor } from './keys.js';
import { dryRun, kubeWriter, type KubeWriter, leaderOnly } from './kube/client.js';
import { type KubeApi, retryAfterMs, statusOf } from './kube/api.js';
import { LeaderElector } from './leader.js';
import type { Logger } from './log.js';
import { TargetIndex, ValuesIndex } from './mapping/index.js';
import { parseTargets } from './mapping/targets.js';
import type { Metrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { Reconciler } from './reconciler.js';
import { TriggerScheduler } from './scheduler.js';
import { TokenBucket } from './throttle.js';
import { parseSelector } from './selector.js';
import { buildCaches, SOURCE_KINDS } from './sources/caches.js';
import { type ReleaseObject, sourceKey, type SourceObject } from './sources/objects.js';
import { monotonicNanoClock } from './trigger.js';

export { CacheSyncTimeoutError } from './sources/caches.js';

export interface ControllerDeps {
  api: KubeApi;
  log: Logger;
  metrics: Metrics;
  writer?: KubeWriter;
  /** Leadership lost: the process should exit, as controller-runtime's managers do. */
  onLostLeadership?: () => void;
}

export interface Controller {
  /** Resolves once caches are synced (workers start when leading); rejects with CacheSyncTimeoutError. */
  readonly started: Promise<void>;
  /** Caches synced: the readiness probe. */
  ready(): boolean;
  /** Stops taking work, finishes in-flight items within the graceful shutdown timeout, releases the lease. */
  stop(): Promise<void>;
}

type QueueName = 'trigger' | 'release' | 'autodiscovery';

export function startController(config: Config, deps: ControllerDeps): Controller {
  const { api, log, metrics } = deps;
  const keys = keysFor(config.keyDomain);
  const elector = config.leaderElect
    ? new LeaderElector({
        api,
        namespace: config.leaderElectionNamespace,
        name: config.leaderElectionId,
        leaseDurationMs: config.leaseDurationMs,
        renewDeadlineMs: config.renewDeadlineMs,
        retryPeriodMs: config.retryPeriodMs,
        log,
        onStartedLeading: () => startWorkers(),
        onStoppedLeading: () => {
          void shutdownQueues().then(() => deps.onLostLeadership?.());
        },
      })
    : undefined;
  const isLeader = (): boolean => !elector || elector.isLeader();
  let writer = deps.writer ?? kubeWriter(api);
  if (config.dryRun) writer = dryRun(writer, log);
  if (elector) writer = leaderOnly(writer, isLeader);

  const caches = buildCaches(config, keys, api, log, metrics);
  const { getSource, getRelease } = caches;
  const releaseSelector = parseSelector(config.helmreleaseLabelSelector);
  const inScope = (release: ReleaseObject): boolean => releaseSelector.matches(release.labels);
  const index = new TargetIndex();
  const values = new ValuesIndex();
  const queue = new WorkQueue<string>();
  const releaseQueue = new WorkQueue<string>();
  // Marks wait on sources that do not exist yet: poll for them, but at most every 30s.
  const markQueue = new WorkQueue<string>({ baseDelayMs: 500, maxDelayMs: 30_000 });
  const queues: [QueueName, WorkQueue<string>][] = [
    ['trigger', queue],
    ['release', releaseQueue],
    ['autodiscovery', markQueue],
  ];

  const poster = config.eventsAddr ? new FluxEventPoster({ address: config.eventsAddr, log, metrics }) : undefined;
  const events = new EventRecorder(writer, log, hostname(), poster && { poster, keyDomain: config.keyDomain });
  const scheduler = new TriggerScheduler({
    debounceMs: config.debounceMs,
    minIntervalMs: config.minTriggerIntervalMs,
    triggerMode: config.triggerMode,
    dryRun: config.dryRun,
    resetStalled: config.resetStalled,
    throttle: config.maxTriggersPerSecond > 0 ? new TokenBucket(config.maxTriggersPerSecond, Math.max(1, config.maxTriggersPerSecond), Date.now()) : undefined,
    queue: releaseQueue,
    getRelease,
    onSettled: (release, requests, triggered) => {
      // Urgent: recording the digest finishes a user's change, and is not to wait behind a wave.
      for (const key of reconciler.settled(release, requests, triggered)) queue.add(key, true);
    },
    writer,
    events,
    metrics,
    log,
    clock: monotonicNanoClock(),
  });
  const reconciler = new Reconciler({
    keys,
    defaultNamespace: config.defaultNamespace,
    values,
    autodiscovery: config.autodiscovery,
    deferToFluxWatch: config.deferToFluxWatch,
    noCrossNamespaceRefs: config.noCrossNamespaceRefs,
    inScope,
    scheduler,
    getSource,
    getRelease,
    writer,
    events,
    metrics,
    log,
  });
  const sourceSelector = parseSelector(config.watchLabelSelector);
  const discoverer = new Discoverer({
    keys,
    defaultNamespace: config.defaultNamespace,
    values,
    consumerInScope: (ref) => {
      const release = getRelease(`${ref.namespace}/${ref.name}`);
      return release !== undefined && inScope(release);
    },
    sourceInScope: (labels) => sourceSelector.matches(labels),
    getSource,
    writer,
    events,
    metrics,
    log,
  });
  const mark = (key: string): void => {
    if (config.autodiscovery) markQueue.add(key);
  };
  // Sources hrto marked, or that releases read: their marks may need adding or removing.
  const markIfDiscovered = (src: SourceObject): void => {
    if (src.annotations[keys.autodiscovered] !== undefined || values.consumersOf(src.key).length > 0) mark(src.key);
  };

  const indexSource = (src: SourceObject): void => {
    try {
      index.set(src.key, parseTargets(src.annotations, keys, config.defaultNamespace));
    } catch {
      index.delete(src.key); // reported by the reconciler
    }
  };
  for (const informer of caches.sources) {
    informer.addHandlers({
      // A source created, or its content changed, once the caches are synced is a user's change:
      // urgent, ahead of a first-sight wave still being worked through.
      add: (src) => {
        indexSource(src);
        reconciler.noteChange(src.key);
        queue.add(src.key, synced);
        markIfDiscovered(src);
      },
      update: (old, src) => {
        indexSource(src);
        const changed = old.digest !== src.digest;
        if (changed) reconciler.noteChange(src.key);
        queue.add(src.key, changed);
        markIfDiscovered(src);
      },
      resync: (src) => {
        queue.add(src.key);
        markIfDiscovered(src);
      },
      delete: (src) => {
        if (!getSource(src.key)) index.delete(src.key);
        queue.add(src.key);
        // Unlabeled by a user or deleted: autodiscovery labels it again while releases read it.
        markIfDiscovered(src);
      },
    });
  }
  const wakeSourcesOf = (release: ReleaseObject): void => {
    for (const key of index.sourcesOf(release)) queue.add(key);
    for (const ref of release.valuesFrom) queue.add(sourceKey(ref.kind, release.namespace, ref.name));
  };
  /** Re-indexes valuesFrom; every source referenced before or now may need new marks and a reconcile. */
  const reindex = (release: ReleaseObject | undefined, removed?: ReleaseObject): void => {
    const affected = release ? values.set(release) : removed ? values.delete(removed) : [];
    for (const key of affected) {
      mark(key);
      queue.add(key);
    }
  };
  const valuesFromOf = (release: ReleaseObject): string => JSON.stringify(release.valuesFrom);
  const labelsOf = (release: ReleaseObject): string => JSON.stringify(release.labels);
  for (const informer of caches.releases) {
    informer.addHandlers({
      add: (release) => {
        reindex(release);
        wakeSourcesOf(release);
      },
      update: (old, release) => {
        if (valuesFromOf(old) !== valuesFromOf(release) || labelsOf(old) !== labelsOf(release)) reindex(release);
        const resumed = old.suspended !== release.suspended || old.paused !== release.paused;
        if (resumed || old.uid !== release.uid || labelsOf(old) !== labelsOf(release)) wakeSourcesOf(release);
      },
      resync: (release) => {
        for (const ref of release.valuesFrom) mark(sourceKey(ref.kind, release.namespace, ref.name));
      },
      delete: (release) => reindex(undefined, release),
    });
  }

  // One release informer per namespace scope: disjoint, so sizes add up without listing.
  const releaseCount = (): number => caches.releases.reduce((n, i) => n + i.size, 0);
  metrics.observe({
    queueDepths: () => queues.map(([name, q]) => [name, q.depth + q.delayed] as const),
    watchedSources: () => {
      const watched = caches.listSources();
      return SOURCE_KINDS.map(([kind]) => [kind, watched.filter((s) => s.kind === kind).length] as const);
    },
    watchedReleases: releaseCount,
    informersSynced: () => caches.all.map((informer) => [informer.name, informer.hasSynced()] as const),
    leader: isLeader,
  });

  const worker = async (name: QueueName, q: WorkQueue<string>, reconcile: (key: string) => Promise<'done' | 'retry'>): Promise<void> => {
    for (;;) {
      const key = await q.get();
      if (key === undefined) return;
      try {
        const outcome = await reconcile(key);
        metrics.reconciles.inc({ queue: name, result: outcome === 'retry' ? 'requeue' : 'success' });
        if (outcome === 'retry') {
          metrics.queueRetries.inc({ queue: name });
          q.addRateLimited(key);
        } else {
          q.forget(key);
        }
      } catch (err) {
        metrics.reconciles.inc({ queue: name, result: 'error' });
        if (err instanceof NotLeaderError) continue; // shutting down: the new leader takes it from here
        metrics.queueRetries.inc({ queue: name });
        // Backoff, but never sooner than the server asked (429 and 503 carry Retry-After).
        const delay = q.addRateLimited(key, retryAfterMs(err));
        log.error(
          { queue: name, key, status: statusOf(err), err: (err as Error).message, retryInMs: delay, retries: q.retries(key) },
          `${name} reconcile failed; retrying`,
        );
      } finally {
        q.done(key);
      }
    }
  };
  const workers: Promise<void>[] = [];
  let synced = false;
  let stopping = false;
  let workersStarted = false;
  function startWorkers(): void {
    if (!synced || stopping || workersStarted || !isLeader()) return;
    workersStarted = true;
    log.info(
      { sources: index.size, helmreleases: releaseCount(), workers: config.maxConcurrency, triggerMode: config.triggerMode, dryRun: config.dryRun },
      'caches synced; reconciling',
    );
    for (let i = 0; i < config.maxConcurrency; i++) {
      workers.push(worker('trigger', queue, (key) => reconciler.reconcile(key)));
      workers.push(worker('release', releaseQueue, (key) => scheduler.reconcile(key)));
    }
    // Marking is rare and cheap: two workers keep a slow patch from holding up the others.
    if (config.autodiscovery) for (let i = 0; i < 2; i++) workers.push(worker('autodiscovery', markQueue, (key) => discoverer.reconcile(key)));
  }
  async function shutdownQueues(): Promise<void> {
    stopping = true;
    await Promise.all(queues.map(([, q]) => q.shutdown()));
    await Promise.all(workers);
  }

  if (keys.unwatchableLabels.length > 0) {
    log.info({ labels: keys.unwatchableLabels }, 'label spellings accepted but not watched: they are not valid label keys, so no object can carry them');
  }
  caches.start();
  const started = (async () => {
    await caches.waitForSync(config.cacheSyncTimeoutMs);
    synced = true;
    if (stopping) return;
    if (elector) {
      log.info({ identity: elector.identity }, 'caches synced; campaigning for leadership');
      elector.start();
    } else {
      startWorkers();
    }
  })();
  started.catch(() => {}); // the caller observes it; avoid an unhandled rejection when it does not

  return {
    started,
    ready: () => synced,
    async stop() {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.gracefulShutdownTimeoutMs);
      });
      const finished = await Promise.race([shutdownQueues().then(() => 'done' as const), deadline]);
      clearTimeout(timer);
      if (finished === 'timeout') log.warn({ timeoutMs: config.gracefulShutdownTimeoutMs }, 'in-flight work did not finish within the graceful shutdown timeout');
      reconciler.flushAdoptions();
      await elector?.stop();
      // The last Flux events (a trigger just before SIGTERM) get a few seconds to leave.
      await poster?.stop(Math.min(5_000, config.gracefulShutdownTimeoutMs));
      await caches.shutdown();
    },
  };
}
