// The bench's Kubernetes client: hrto's own KubeApi and Informer (src/kube/api.ts,
// src/sources/informer.ts), as the cluster admin, under the User-Agent hrto-bench so the audit log
// tells the bench's requests from hrto's. More connections than hrto allows itself: fixtures of tens
// of thousands of objects are created with high parallelism.
import { Writable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApi, type Query } from '../src/kube/api.js';
import { kubeConfigCredentials } from '../src/kube/credentials.js';
import { createLogger } from '../src/log.js';
import { type Cached, Informer } from '../src/sources/informer.js';

export { MERGE_PATCH } from '../src/kube/api.js';

export interface RawObject {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  [k: string]: unknown;
}

interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: RawObject[];
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const silent = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));

export class RawKube {
  private constructor(private readonly api: KubeApi) {}

  static async connect(kc: KubeConfig, connections = 128): Promise<RawKube> {
    return new RawKube(await KubeApi.create(kubeConfigCredentials(kc), { userAgent: 'hrto-bench', requestConnections: connections }));
  }

  /** One request; the parsed JSON response. Errors throw hrto's ApiError (statusOf gives the code). */
  request<T = RawObject>(method: Method, path: string, options: { body?: unknown; contentType?: string; query?: Query } = {}): Promise<T> {
    return this.api.json<T>(method, path, options);
  }

  /** Every object of a collection, paginated; with the list's resourceVersion. */
  async list(path: string, query: Query = {}): Promise<{ items: RawObject[]; resourceVersion: string }> {
    const items: RawObject[] = [];
    let cont: string | undefined;
    let resourceVersion: string;
    do {
      const page = await this.request<RawList>('GET', path, { query: { ...query, limit: 1000, continue: cont } });
      items.push(...(page.items ?? []));
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? '';
    } while (cont);
    return { items, resourceVersion };
  }

  /**
   * hrto's informer on a collection, its events as the watch types (ADDED, MODIFIED, DELETED) with
   * the raw objects; resolves once the list was delivered (synced).
   */
  async informer(path: string, query: { labelSelector?: string }, onEvent: (type: string, obj: RawObject) => void): Promise<{ stop: () => void }> {
    const informer = new Informer<Cached & { raw: RawObject }>({
      name: `bench ${path}`,
      api: this.api,
      path,
      labelSelector: query.labelSelector,
      transform: (raw) => ({ key: `${raw.metadata?.namespace}/${raw.metadata?.name}`, resourceVersion: raw.metadata?.resourceVersion ?? '', raw }),
      log: silent,
    });
    informer.addHandlers({
      add: (o) => onEvent('ADDED', o.raw),
      update: (_old, o) => onEvent('MODIFIED', o.raw),
      delete: (o) => onEvent('DELETED', o.raw),
    });
    informer.start();
    await informer.waitForSync();
    return { stop: () => void informer.shutdown() };
  }

  close(): void {
    this.api.close();
  }
}
