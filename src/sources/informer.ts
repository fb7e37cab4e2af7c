// A list-watch cache in the manner of client-go's reflector: paginated list, watch from the list's
// resourceVersion with bookmarks, relist on 410 Gone, reconnect with backoff on errors, periodic
// resync. Unlike client-node's ListWatch it stores a transformed object (for example metadata and a
// digest instead of a Secret's data), so memory holds only what hrto decides on.
import type { Logger } from '../log.js';
import { ApiError, type KubeApi, statusOf } from '../kube/api.js';
import { backoffDelay } from '../queue.js';

export interface RawObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: RawObject[];
}

export interface Cached {
  /** namespace/name */
  key: string;
  resourceVersion: string;
}

export interface InformerHandlers<S> {
  add?(obj: S): void;
  update?(old: S, obj: S): void;
  delete?(obj: S): void;
  /** Periodic resync: every cached object again, as controller-runtime's SyncPeriod does. */
  resync?(obj: S): void;
}

export interface InformerOptions<S extends Cached> {
  name: string;
  api: KubeApi;
  /** Collection path, e.g. /api/v1/configmaps or /api/v1/namespaces/ns/configmaps. */
  path: string;
  labelSelector?: string;
  transform: (obj: RawObject) => S;
  log: Logger;
  resyncMs?: number;
  pageSize?: number;
  onError?: (err: unknown) => void;
}

class GoneError extends Error {}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export class Informer<S extends Cached> {
  private cache = new Map<string, S>();
  private resourceVersion = '';
  private synced = false;
  private readonly syncWaiters: (() => void)[] = [];
  private readonly handlers: InformerHandlers<S>[] = [];
  private readonly stop = new AbortController();
  private running?: Promise<void>;
  private resyncTimer?: NodeJS.Timeout;

  constructor(private readonly opts: InformerOptions<S>) {}

  get name(): string {
    return this.opts.name;
  }

  addHandlers(handlers: InformerHandlers<S>): void {
    this.handlers.push(handlers);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get(key: string): S | undefined {
    return this.cache.get(key);
  }

  list(): S[] {
    return [...this.cache.values()];
  }

  get size(): number {
    return this.cache.size;
  }

  start(): void {
    if (this.running) return;
    this.running = this.run();
    if (this.opts.resyncMs) {
      this.resyncTimer = setInterval(() => {
        for (const obj of this.cache.values()) this.emit('resync', obj);
      }, this.opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  async shutdown(): Promise<void> {
    this.stop.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.running;
  }

  private emit(event: 'add' | 'delete' | 'resync', obj: S): void;
  private emit(event: 'update', obj: S, old: S): void;
  private emit(event: keyof InformerHandlers<S>, obj: S, old?: S): void {
    for (const h of this.handlers) {
      try {
        if (event === 'update') h.update?.(old!, obj);
        else h[event]?.(obj);
      } catch (err) {
        this.opts.log.error({ err, informer: this.name, key: obj.key }, 'informer handler failed');
      }
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stop.signal.aborted) {
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce();
        failures = 0;
      } catch (err) {
        if (this.stop.signal.aborted) break;
        if (err instanceof GoneError || statusOf(err) === 410) {
          this.opts.log.debug({ informer: this.name }, 'watch expired (410 Gone); relisting');
          this.resourceVersion = '';
          continue;
        }
        failures++;
        const retryAfterMs = err instanceof ApiError && err.retryAfterSeconds ? err.retryAfterSeconds * 1000 : 0;
        const delay = Math.max(retryAfterMs, backoffDelay(failures - 1, { baseDelayMs: 200, maxDelayMs: 30_000 }));
        this.opts.log.warn(
          { informer: this.name, err: (err as Error).message, status: statusOf(err), retryInMs: delay },
          'list/watch failed; retrying',
        );
        this.opts.onError?.(err);
        await sleep(delay, this.stop.signal);
      }
    }
  }

  private transform(obj: RawObject): S | undefined {
    try {
      return this.opts.transform(obj);
    } catch (err) {
      this.opts.log.error(
        { informer: this.name, object: `${obj.metadata?.namespace}/${obj.metadata?.name}`, err: (err as Error).message },
        'cannot read object; ignoring it',
      );
      return undefined;
    }
  }

  private async relist(): Promise<void> {
    const fresh = new Map<string, S>();
    let cont: string | undefined;
    let listRV: string;
    do {
      const page = await this.opts.api.json<RawList>('GET', this.opts.path, {
        query: { labelSelector: this.opts.labelSelector, limit: this.opts.pageSize ?? 500, continue: cont },
      });
      for (const item of page.items ?? []) {
        const obj = this.transform(item);
        if (obj) fresh.set(obj.key, obj);
      }
      cont = page.metadata?.continue || undefined;
      listRV = page.metadata?.resourceVersion ?? '';
    } while (cont && !this.stop.signal.aborted);
    const old = this.cache;
    this.cache = fresh;
    for (const [key, obj] of fresh) {
      const before = old.get(key);
      if (!before) this.emit('add', obj);
      else if (before.resourceVersion !== obj.resourceVersion) this.emit('update', obj, before);
    }
    for (const [key, obj] of old) if (!fresh.has(key)) this.emit('delete', obj);
    this.resourceVersion = listRV;
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private async watchOnce(): Promise<void> {
    let gone = false;
    const onEvent = (type: string, raw: RawObject): void => {
      if (type === 'ERROR') {
        const status = raw as { code?: number; reason?: string; message?: string };
        if (status.code === 410) gone = true;
        else throw new ApiError(status.code ?? 500, String(status.reason ?? ''), `watch error: ${String(status.message)}`);
        return;
      }
      const rv = raw.metadata?.resourceVersion;
      if (type === 'BOOKMARK') {
        if (rv) this.resourceVersion = rv;
        return;
      }
      const obj = this.transform(raw);
      if (rv) this.resourceVersion = rv;
      if (!obj) return;
      const before = this.cache.get(obj.key);
      if (type === 'DELETED') {
        this.cache.delete(obj.key);
        this.emit('delete', before ?? obj);
      } else {
        this.cache.set(obj.key, obj);
        if (before) this.emit('update', obj, before);
        else this.emit('add', obj);
      }
    };
    // The server ends the watch after timeoutSeconds; a spread avoids every watch reconnecting at once.
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    await this.opts.api.watch(
      this.opts.path,
      { labelSelector: this.opts.labelSelector, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
      onEvent,
      this.stop.signal,
      (timeoutSeconds + 60) * 1000,
    );
    if (gone) throw new GoneError('410 Gone');
  }
}
