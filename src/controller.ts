// Wires the data flow: informer event -> source key in the queue -> worker -> reconciler.
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from './config.js';
import { EventRecorder } from './events.js';
import { keysFor } from './keys.js';
import { HELM_GROUP, HELM_PLURAL, HELM_VERSION, kubeWriter, type KubeWriter } from './kube/client.js';
import type { Logger } from './log.js';
import { TargetIndex } from './mapping/index.js';
import { parseTargets } from './mapping/targets.js';
import type { Metrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { Reconciler } from './reconciler.js';
import { type Cached, Informer } from './sources/informer.js';
import { type ReleaseObject, type SourceObject, toRelease, toSource } from './sources/objects.js';
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
  const queue = new WorkQueue<string>();

  const onError = (informer: string) => () => metrics.watchErrors.inc({ informer });
  // One informer per watched namespace ('' = all) and, for sources, per watch-label spelling:
  // label selectors cannot express "either key".
  const scopes = config.watchNamespaces.length > 0 ? config.watchNamespaces : [''];
  const inScope = (resource: string, namespace: string): string =>
    namespace ? `/namespaces/${namespace}/${resource}` : `/${resource}`;
  const sourceInformers = scopes.flatMap((namespace) =>
    keys.watchLabels.map((label) => {
      const name = `configmaps[${namespace || '*'}][${label}]`;
      return new Informer<SourceObject>({
        name,
        kc,
        path: `/api/v1${inScope('configmaps', namespace)}`,
        labelSelector: `${label}=true`,
        transform: toSource('ConfigMap', keys),
        log,
        resyncMs: config.resyncPeriodMs,
        onError: onError(name),
      });
    }),
  );
  const releaseInformers = scopes.map((namespace) => {
    const name = `helmreleases[${namespace || '*'}]`;
    return new Informer<ReleaseObject>({
      name,
      kc,
      path: `/apis/${HELM_GROUP}/${HELM_VERSION}${inScope(HELM_PLURAL, namespace)}`,
      transform: toRelease,
      log,
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

  const reconciler = new Reconciler({
    keys,
    defaultNamespace: config.defaultNamespace,
    triggerMode: config.triggerMode,
    getSource,
    getRelease,
    writer,
    events: new EventRecorder(writer, log, hostname()),
    metrics,
    log,
    clock: monotonicNanoClock(),
  });

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
      },
      update: (old, src) => {
        indexSource(src);
        if (old.digest !== src.digest) reconciler.noteChange(src.key);
        queue.add(src.key);
      },
      resync: (src) => queue.add(src.key),
      delete: (src) => {
        if (!getSource(src.key)) index.delete(src.key);
        queue.add(src.key);
      },
    });
  }
  const wakeSourcesOf = (release: ReleaseObject): void => {
    for (const key of index.sourcesOf(release)) queue.add(key);
  };
  for (const informer of releaseInformers) {
    informer.addHandlers({
      add: wakeSourcesOf,
      update: (old, release) => {
        if (old.suspended !== release.suspended || old.uid !== release.uid) wakeSourcesOf(release);
      },
    });
  }

  const collect = (): void => {
    metrics.queueDepth.set(queue.depth);
    metrics.watchedSources.set({ kind: 'ConfigMap' }, new Set(sourceInformers.flatMap((i) => i.list().map((s) => s.key))).size);
    metrics.watchedReleases.set(releaseInformers.reduce((n, i) => n + i.size, 0));
    for (const informer of informers) metrics.cacheSynced.set({ informer: informer.name }, informer.hasSynced() ? 1 : 0);
  };
  const collector = setInterval(collect, 1000);
  collector.unref();

  let stopping = false;
  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        const outcome = await reconciler.reconcile(key);
        metrics.reconciles.inc({ result: outcome === 'retry' ? 'requeue' : 'success' });
        if (outcome === 'retry') {
          metrics.queueRetries.inc();
          queue.addRateLimited(key);
        } else {
          queue.forget(key);
        }
      } catch (err) {
        metrics.reconciles.inc({ result: 'error' });
        metrics.queueRetries.inc();
        const delay = queue.addRateLimited(key);
        log.error({ source: key, err: (err as Error).message, retryInMs: delay, retries: queue.retries(key) }, 'reconcile failed; retrying');
      } finally {
        queue.done(key);
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
    for (let i = 0; i < config.maxConcurrency; i++) workers.push(worker());
  })();
  started.catch(() => {}); // the caller observes it; avoid an unhandled rejection when it does not

  return {
    started,
    async stop() {
      stopping = true;
      clearInterval(collector);
      await queue.shutdown();
      await Promise.all(workers);
      await Promise.all(informers.map((i) => i.shutdown()));
    },
  };
}
