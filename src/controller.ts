// Wires the data flow: informer event -> key in a rate-limited queue -> worker -> reconciler.
// Three queues, one way: sources (decide what to trigger), HelmReleases (the trigger itself, after
// debounce and minimum interval) and autodiscovery marks. Only the leader runs workers.
import { hostname } from 'node:os';
import { decisionContext } from './assess.js';
import type { Config } from './config.js';
import { Discoverer } from './discovery.js';
import { EventRecorder } from './events.js';
import { FluxEventPoster } from './flux-events.js';
import { keysFor } from './keys.js';
import { dryRun, kubeWriter, type KubeWriter, leaderOnly } from './kube/client.js';
import type { KubeApi } from './kube/api.js';
import { LeaderElector } from './leader.js';
import type { Logger } from './log.js';
import { TargetIndex, ValuesIndex } from './mapping/index.js';
import type { Metrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { Reconciler } from './reconciler.js';
import { TriggerScheduler } from './scheduler.js';
import { ordered, rolloutChanged, windowsClosed } from './rollout/facts.js';
import { countsInFlight, InFlight } from './rollout/inflight.js';
import { TokenBucket } from './throttle.js';
import { parseSelector } from './selector.js';
import { buildCaches, SOURCE_KINDS } from './sources/caches.js';
import type { ReleaseObject } from './sources/objects.js';
import { monotonicNanoClock } from './trigger.js';
import { releaseHandlers, sourceHandlers, sourcesToWake } from './watches.js';
import { Holder } from './holds.js';
import { type Lane, WorkerPool } from './workers.js';

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

/** Secrets off: one line saying what is ignored, so a release fed by a Secret is not a mystery. */
function logSecretsOff(releases: readonly ReleaseObject[], log: Logger): void {
  const refs = releases.flatMap((r) => r.valuesFrom.filter((ref) => ref.kind === 'Secret').map((ref) => `${r.key} <- Secret/${ref.name}`));
  log.info(
    { secretReferences: refs.length, examples: refs.slice(0, 5) },
    'Secrets are off (--watch-secrets=false): labeled Secrets and valuesFrom references to Secrets are ignored, never read or patched',
  );
}

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
        onStartedLeading: () => pool.start(),
        onStoppedLeading: () => {
          void pool.shutdown().then(() => deps.onLostLeadership?.());
        },
      })
    : undefined;
  const isLeader = (): boolean => !elector || elector.isLeader();
  let writer = deps.writer ?? kubeWriter(api);
  if (config.dryRun) writer = dryRun(writer, log);
  if (elector) writer = leaderOnly(writer, isLeader);

  const caches = buildCaches(config, keys, api, log, metrics);
  const { getSource, getRelease } = caches;
  const decision = decisionContext(config, keys);
  const { inScope } = decision;
  const index = new TargetIndex();
  const values = new ValuesIndex(decision.sourceKinds);
  const queue = new WorkQueue<string>();
  const releaseQueue = new WorkQueue<string>();
  // Marks wait on sources that do not exist yet: poll for them, but at most every 30s.
  const markQueue = new WorkQueue<string>({ baseDelayMs: 500, maxDelayMs: 30_000 });

  const poster = config.eventsAddr ? new FluxEventPoster({ address: config.eventsAddr, log, metrics }) : undefined;
  const events = new EventRecorder(writer, log, hostname(), poster && { poster, keyDomain: config.keyDomain });
  // Every trigger leaves a record; waved releases and plan steps gate what comes after them, and
  // with an in-flight limit every release counts.
  const inFlight = new InFlight((r) => countsInFlight(config.maxUpgradesInFlight, r), config.waveTimeoutMs);
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
      // Urgent: recording the digest finishes a user's change, and is not to wait behind a wave
      // (a source of many targets gathers its landed triggers first: see Reconciler.wakeDelay).
      for (const key of reconciler.settled(release, requests, triggered)) queue.addAfter(key, reconciler.wakeDelay(key), true);
    },
    writer,
    events,
    metrics,
    log,
    clock: monotonicNanoClock(),
    rollout: {
      recordAnnotation: keys.rolloutRecord,
      holdAnnotation: keys.suspendedBy,
      windowsClosed: (release) => windowsClosed(release, decision.rollout, Date.now()),
      maxInFlight: config.maxUpgradesInFlight,
      inFlight: () => inFlight.count(Date.now()),
    },
  });
  const holder: Holder = new Holder({
    annotation: keys.suspendedBy,
    recordAnnotation: keys.rolloutRecord,
    getRelease,
    // Only a wave, windows, a source's plan or an in-flight limit can hold a change: other releases cost no look.
    mayHold: (release) => ordered(release, decision.rollout) || config.maxUpgradesInFlight > 0 || reconciler.planned(release),
    rowsFor: (release) => reconciler.rowsFor(release),
    waitingForSlot: (release) => scheduler.waitingForSlot(release),
    writer,
    events,
    metrics,
    log,
    now: Date.now,
    dryRun: config.dryRun,
  });
  const reconciler: Reconciler = new Reconciler({
    ...decision,
    requested: (release, source, digest) => scheduler.isPending(release, source, digest),
    values,
    scheduler,
    sourcesOf: (release) => sourcesToWake(release, index, values),
    markedFor: (source) => holder.markedFor(source),
    wakeHold: (release) => releaseQueue.add(release),
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
  // Marks are checked only with autodiscovery on; without it markQueue has no workers.
  const mark = (key: string): void => {
    if (config.autodiscovery) markQueue.add(key);
  };

  // One release informer per namespace scope: disjoint, so sizes add up without listing.
  const releaseCount = (): number => caches.releases.reduce((n, i) => n + i.size, 0);
  const lanes: Lane[] = [
    { name: 'source', queue, reconcile: (key) => reconciler.reconcile(key), workers: config.maxConcurrency },
    {
      name: 'release',
      queue: releaseQueue,
      // A release's hold first: while a source holds a change from it, no trigger may go (it would
      // carry the held change too).
      reconcile: async (key) => {
        const hold = await holder.reconcile(key);
        if (hold === 'retry') return 'retry';
        return hold.held ? 'done' : scheduler.reconcile(key);
      },
      workers: config.maxConcurrency,
    },
    // Marking is rare and cheap: two workers keep a slow patch from holding up the others.
    { name: 'autodiscovery', queue: markQueue, reconcile: (key) => discoverer.reconcile(key), workers: config.autodiscovery ? 2 : 0 },
  ];
  const pool = new WorkerPool({
    lanes,
    isLeader,
    metrics,
    log,
    onStart: () => {
      log.info(
        { sources: index.size, helmreleases: releaseCount(), workers: config.maxConcurrency, triggerMode: config.triggerMode, dryRun: config.dryRun },
        'caches synced; reconciling',
      );
      if (!config.watchSecrets) logSecretsOff(caches.listReleases(), log);
    },
  });

  const watchDeps = { index, values, queue, mark };
  const onSource = sourceHandlers({
    ...watchDeps,
    keys,
    defaultNamespace: config.defaultNamespace,
    getSource,
    noteChange: (key) => reconciler.noteChange(key),
    synced: () => pool.isSynced(),
  });
  for (const informer of caches.sources) informer.addHandlers(onSource);
  const onRelease = releaseHandlers({
    ...watchDeps,
    releaseStatusChanged: rolloutChanged,
    track: (release, deleted) => {
      holder.track(release, deleted);
      if (deleted) {
        inFlight.delete(release);
        scheduler.forget(release.key);
      } else inFlight.set(release);
    },
    wakeHold: (key) => releaseQueue.add(key),
    decisionsChanged: () => reconciler.decisionsChanged(),
    wakeSource: (key) => queue.addAfter(key, reconciler.wakeDelay(key)),
  });
  for (const informer of caches.releases) informer.addHandlers(onRelease);

  metrics.observe({
    queueDepths: () => lanes.map(({ name, queue: q }) => [name, q.depth + q.delayed] as const),
    watchedSources: () => {
      const watched = caches.listSources();
      return SOURCE_KINDS.map(([kind]) => [kind, watched.filter((s) => s.kind === kind).length] as const);
    },
    watchedReleases: releaseCount,
    informersSynced: () => caches.all.map((informer) => [informer.name, informer.hasSynced()] as const),
    leader: isLeader,
    heldReleases: () => holder.heldByReason(),
    oldestHoldSeconds: () => holder.oldestHoldSeconds(),
    upgradesInFlight: () => scheduler.upgradesInFlight(),
  });

  if (keys.unwatchableLabels.length > 0) {
    // Built in, not set by the user: worth a line only to someone debugging why nothing is watched for it.
    log.debug({ labels: keys.unwatchableLabels }, 'label spellings accepted but not watched: they are not valid label keys, so no object can carry them');
  }
  caches.start();
  const started = (async () => {
    await caches.waitForSync(config.cacheSyncTimeoutMs);
    if (!pool.markSynced()) return;
    if (elector) {
      log.info({ identity: elector.identity }, 'caches synced; campaigning for leadership');
      elector.start();
    } else {
      pool.start();
    }
  })();
  started.catch(() => {}); // the caller observes it; avoid an unhandled rejection when it does not

  return {
    started,
    ready: () => pool.isSynced(),
    async stop() {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.gracefulShutdownTimeoutMs);
      });
      const finished = await Promise.race([pool.shutdown().then(() => 'done' as const), deadline]);
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
