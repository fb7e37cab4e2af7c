// The informers hrto runs: labeled ConfigMaps and Secrets (server-side label selectors, so nothing
// unlabeled is listed, watched or cached) and HelmReleases, per watched namespace. The controller
// and `hrto explain` read the same caches.
import type { Config } from '../config.js';
import type { KubeApi } from '../kube/api.js';
import type { Keys } from '../keys.js';
import { HELM_GROUP, HELM_PLURAL, HELM_VERSION } from '../kube/client.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { andSelectors } from '../selector.js';
import { type Cached, Informer } from './informer.js';
import { type ReleaseObject, type SourceObject, toRelease, toSource } from './objects.js';

export const SOURCE_KINDS = [
  ['ConfigMap', 'configmaps'],
  ['Secret', 'secrets'],
] as const;

/** The kinds of source this configuration watches: with --watch-secrets=false, ConfigMaps only. */
export function watchedKinds(config: Pick<Config, 'watchSecrets'>): (typeof SOURCE_KINDS)[number][] {
  return SOURCE_KINDS.filter(([kind]) => kind !== 'Secret' || config.watchSecrets);
}

export class CacheSyncTimeoutError extends Error {
  override readonly name = 'CacheSyncTimeoutError';
}

export interface Caches {
  sources: Informer<SourceObject>[];
  releases: Informer<ReleaseObject>[];
  all: Informer<SourceObject | ReleaseObject>[];
  getSource: (key: string) => SourceObject | undefined;
  getRelease: (key: string) => ReleaseObject | undefined;
  listSources: () => SourceObject[];
  listReleases: () => ReleaseObject[];
  start(): void;
  /** Resolves when every informer has listed; rejects with CacheSyncTimeoutError after the timeout. */
  waitForSync(timeoutMs: number): Promise<void>;
  synced(): boolean;
  shutdown(): Promise<void>;
}

function lookup<S extends Cached>(caches: Informer<S>[]): (key: string) => S | undefined {
  return (key) => {
    for (const cache of caches) {
      const obj = cache.get(key);
      if (obj) return obj;
    }
    return undefined;
  };
}

function unique<S extends Cached>(caches: Informer<S>[]): S[] {
  const byKey = new Map<string, S>();
  for (const cache of caches) for (const obj of cache.list()) byKey.set(obj.key, obj);
  return [...byKey.values()];
}

export function buildCaches(config: Config, keys: Keys, api: KubeApi, log: Logger, metrics?: Metrics, resync = true): Caches {
  const onError = (informer: string) => () => metrics?.watchErrors.inc({ informer });
  // One informer per watched namespace ('' = all) and, for sources, per watch-label spelling:
  // label selectors cannot express "either key".
  const scopes = config.watchNamespaces.length > 0 ? config.watchNamespaces : [''];
  const inScope = (resource: string, namespace: string): string => (namespace ? `/namespaces/${namespace}/${resource}` : `/${resource}`);
  const resyncMs = resync ? config.resyncPeriodMs : undefined;
  const sources = scopes.flatMap((namespace) =>
    watchedKinds(config).flatMap(([kind, resource]) =>
      keys.watchLabels.map((label) => {
        const name = `${resource}[${namespace || '*'}][${label}]`;
        return new Informer<SourceObject>({
          name,
          api,
          path: `/api/v1${inScope(resource, namespace)}`,
          labelSelector: andSelectors(`${label}=true`, config.watchLabelSelector),
          transform: toSource(kind, keys),
          log,
          resyncMs,
          onError: onError(name),
        });
      }),
    ),
  );
  // Every HelmRelease is cached, in scope or not, so a release outside the selector is never
  // mistaken for a missing one.
  const releases = scopes.map((namespace) => {
    const name = `helmreleases[${namespace || '*'}]`;
    return new Informer<ReleaseObject>({
      name,
      api,
      path: `/apis/${HELM_GROUP}/${HELM_VERSION}${inScope(HELM_PLURAL, namespace)}`,
      // An in-flight limit reads every trigger's outcome, global windows may hold every release.
      transform: (raw) => toRelease(raw, keys, config.maxUpgradesInFlight > 0 || config.triggerWindows.length > 0),
      log,
      resyncMs,
      onError: onError(name),
    });
  });
  const all = [...sources, ...releases] as Informer<SourceObject | ReleaseObject>[];
  return {
    sources,
    releases,
    all,
    // An object carrying both label spellings is in two caches; either copy will do.
    getSource: lookup(sources),
    getRelease: lookup(releases),
    listSources: () => unique(sources),
    listReleases: () => unique(releases),
    start: () => {
      for (const informer of all) informer.start();
    },
    synced: () => all.every((i) => i.hasSynced()),
    async waitForSync(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const pending = all.filter((i) => !i.hasSynced()).map((i) => i.name);
          reject(
            new CacheSyncTimeoutError(
              `caches not synced within ${timeoutMs / 1000}s (CACHE_SYNC_TIMEOUT): ${pending.join(', ')}; ` +
                'check the API server connection, RBAC and that the HelmRelease CRD is installed',
            ),
          );
        }, timeoutMs);
      });
      try {
        await Promise.race([Promise.all(all.map((i) => i.waitForSync())), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    shutdown: async () => {
      await Promise.all(all.map((i) => i.shutdown()));
    },
  };
}
