// Wires the data flow: informer event -> source key in the queue -> worker -> reconciler.
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from './config.js';
import { EventRecorder } from './events.js';
import { keysFor } from './keys.js';
import { HELM_GROUP, HELM_PLURAL, HELM_VERSION, kubeWriter, type KubeWriter } from './kube/client.js';
import type { Logger } from './log.js';
import { Discoverer } from './discovery.js';
import { TargetIndex, ValuesIndex } from './mapping/index.js';
import { parseTargets } from './mapping/targets.js';
import type { Metrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { Reconciler } from './reconciler.js';
import { type Cached, Informer } from './sources/informer.js';
import { type ReleaseObject, sourceKey, type SourceObject, toRelease, toSource } from './sources/objects.js';
import { monotonicNanoClock } from './trigger.js';

export class CacheSyncTimeoutError extends Error {
  override readonly name = 'CacheSyncTimeoutError';
}

export interface ControllerDeps {
  kc: KubeConfig;
  log: Logger;
  metrics: Metrics;
  writer?: KubeWriter;
}

export interface Controller {
  /** Resolves once caches are synced and workers run; rejects with CacheSyncTimeoutError. */
  readonly started: Promise<void>;
  stop(): Promise<void>;
}

export function startController(config: Config, deps: ControllerDeps): Controller {
  const { kc, log, metrics } = deps;
  const keys = keysFor(config.keyDomain);
  const writer = deps.writer ?? kubeWriter(kc);
  const index = new TargetIndex();
  const values = new ValuesIndex();
  const queue = new WorkQueue<string>();
  // Marks wait on sources that do not exist yet: poll for them, but at most every 30s.
  const markQueue = new WorkQueue<string>({ baseDelayMs: 500, maxDelayMs: 30_000 });

  const onError = (informer: string) => () => metrics.watchErrors.inc({ informer });
  // One informer per watched namespace ('' = all) and, for sources, per watch-label spelling:
  // label selectors cannot express "either key".
  const scopes = config.watchNamespaces.length > 0 ? config.watchNamespaces : [''];
  const inScope = (resource: string, namespace: string): string =>
    namespace ? `/namespaces/${namespace}/${resource}` : `/${resource}`;
  const sourceKinds = [
    ['ConfigMap', 'configmaps'],
    ['Secret', 'secrets'],
  ] as const;
  const sourceInformers = scopes.flatMap((namespace) =>
    sourceKinds.flatMap(([kind, resource]) =>
      keys.watchLabels.map((label) => {
        const name = `${resource}[${namespace || '*'}][${label}]`;
        return new Informer<SourceObject>({
          name,
          kc,
          path: `/api/v1${inScope(resource, namespace)}`,
          labelSelector: `${label}=true`,
          transform: toSource(kind, keys),
          log,
          resyncMs: config.resyncPeriodMs,
          onError: onError(name),
        });
      }),
    ),
  );
  const releaseInformers = scopes.map((namespace) => {
    const name = `helmreleases[${namespace || '*'}]`;
    return new Informer<ReleaseObject>({
      name,
      kc,
      path: `/apis/${HELM_GROUP}/${HELM_VERSION}${inScope(HELM_PLURAL, namespace)}`,
      transform: toRelease,
      log,
      resyncMs: config.resyncPeriodMs,
      onError: onError(name),
    });
  });
  const informers = [...sourceInformers, ...releaseInformers];

  const lookup =
    <S extends { key: string }>(caches: Informer<S & Cached>[]) =>
    (key: string): S | undefined => {
      for (const cache of caches) {
        const obj = cache.get(key);
        if (obj) return obj;
      }
      return undefined;
    };
  // An object carrying both label spellings is in two caches; either copy will do.
  const getSource = lookup(sourceInformers);
  const getRelease = lookup(releaseInformers);

  const events = new EventRecorder(writer, log, hostname());
  const reconciler = new Reconciler({
    keys,
    defaultNamespace: config.defaultNamespace,
    triggerMode: config.triggerMode,
    values,
    autodiscovery: config.autodiscovery,
    deferToFluxWatch: config.deferToFluxWatch,
    getSource,
    getRelease,
    writer,
    events,
    metrics,
    log,
    clock: monotonicNanoClock(),
  });
  const discoverer = new Discoverer({ keys, defaultNamespace: config.defaultNamespace, values, getSource, writer, events, metrics, log });
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
  for (const informer of sourceInformers) {
    informer.addHandlers({
      add: (src) => {
        indexSource(src);
        reconciler.noteChange(src.key);
        queue.add(src.key);
        markIfDiscovered(src);
      },
      update: (old, src) => {
        indexSource(src);
        if (old.digest !== src.digest) reconciler.noteChange(src.key);
        queue.add(src.key);
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
  for (const informer of releaseInformers) {
    informer.addHandlers({
      add: (release) => {
        reindex(release);
        wakeSourcesOf(release);
      },
      update: (old, release) => {
        if (valuesFromOf(old) !== valuesFromOf(release)) reindex(release);
        if (old.suspended !== release.suspended || old.uid !== release.uid) wakeSourcesOf(release);
      },
      resync: (release) => {
        for (const ref of release.valuesFrom) mark(sourceKey(ref.kind, release.namespace, ref.name));
      },
      delete: (release) => reindex(undefined, release),
    });
  }

  const collect = (): void => {
    metrics.queueDepth.set({ queue: 'trigger' }, queue.depth);
    metrics.queueDepth.set({ queue: 'autodiscovery' }, markQueue.depth);
    const watched = new Set(sourceInformers.flatMap((i) => i.list().map((s) => s.key)));
    for (const [kind] of sourceKinds) metrics.watchedSources.set({ kind }, [...watched].filter((k) => k.startsWith(`${kind}/`)).length);
    metrics.watchedReleases.set(releaseInformers.reduce((n, i) => n + i.size, 0));
    for (const informer of informers) metrics.cacheSynced.set({ informer: informer.name }, informer.hasSynced() ? 1 : 0);
  };
  const collector = setInterval(collect, 1000);
  collector.unref();

  let stopping = false;
  const worker = async (q: WorkQueue<string>, reconcile: (key: string) => Promise<'done' | 'retry'>, name: 'trigger' | 'autodiscovery'): Promise<void> => {
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
        metrics.queueRetries.inc({ queue: name });
        const delay = q.addRateLimited(key);
        log.error({ source: key, err: (err as Error).message, retryInMs: delay, retries: q.retries(key) }, `${name === 'trigger' ? 'reconcile' : 'autodiscovery'} failed; retrying`);
      } finally {
        q.done(key);
      }
    }
  };
  const workers: Promise<void>[] = [];

  if (keys.unwatchableLabels.length > 0) {
    log.info(
      { labels: keys.unwatchableLabels },
      'label spellings accepted but not watched: they are not valid label keys, so no object can carry them',
    );
  }
  for (const informer of informers) informer.start();
  const started = (async () => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const pending = informers.filter((i) => !i.hasSynced()).map((i) => i.name);
        reject(
          new CacheSyncTimeoutError(
            `caches not synced within ${config.cacheSyncTimeoutMs / 1000}s (CACHE_SYNC_TIMEOUT): ${pending.join(', ')}; ` +
              'check the API server connection, RBAC and that the HelmRelease CRD is installed',
          ),
        );
      }, config.cacheSyncTimeoutMs);
    });
    try {
      await Promise.race([Promise.all(informers.map((i) => i.waitForSync())), timeout]);
    } finally {
      clearTimeout(timer);
    }
    collect();
    if (stopping) return;
    log.info(
      { sources: index.size, helmreleases: releaseInformers.reduce((n, i) => n + i.size, 0), workers: config.maxConcurrency, triggerMode: config.triggerMode },
      'caches synced; reconciling',
    );
    for (let i = 0; i < config.maxConcurrency; i++) workers.push(worker(queue, (key) => reconciler.reconcile(key), 'trigger'));
    // Marking is rare and cheap: two workers keep a slow patch from holding up the others.
    if (config.autodiscovery) for (let i = 0; i < 2; i++) workers.push(worker(markQueue, (key) => discoverer.reconcile(key), 'autodiscovery'));
  })();
  started.catch(() => {}); // the caller observes it; avoid an unhandled rejection when it does not

  return {
    started,
    async stop() {
      stopping = true;
      clearInterval(collector);
      await Promise.all([queue.shutdown(), markQueue.shutdown()]);
      await Promise.all(workers);
      await Promise.all(informers.map((i) => i.shutdown()));
    },
  };
}
