// The bench's own Kubernetes client: plain HTTPS with a keep-alive agent and newline-delimited JSON
// watches, configured from the control plane's kubeconfig (CA and bearer token). It depends on
// nothing in src/, so the bench keeps measuring while hrto's own HTTP layer is rewritten, and it
// keeps the bench's overhead in the client-side latency floor small.
import { readFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

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

export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    body: string,
  ) {
    super(`${method} ${path}: HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

export const MERGE_PATCH = 'application/merge-patch+json';

type Query = Record<string, string | number | boolean | undefined>;

function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

export class RawKube {
  private readonly server: URL;
  private readonly ca: Buffer | undefined;
  private readonly token: string;
  private readonly agent: https.Agent;

  constructor(kc: KubeConfig, maxSockets = 128) {
    const cluster = kc.getCurrentCluster();
    const user = kc.getCurrentUser();
    if (!cluster || !user?.token) throw new Error('bench: the kubeconfig needs a cluster and a bearer token');
    this.server = new URL(cluster.server);
    this.ca = cluster.caData ? Buffer.from(cluster.caData, 'base64') : cluster.caFile ? readFileSync(cluster.caFile) : undefined;
    this.token = user.token;
    this.agent = new https.Agent({ keepAlive: true, maxSockets, ca: this.ca });
  }

  /** One request; the parsed JSON response. Errors (HTTP >= 400) throw a KubeError. */
  request<T = RawObject>(method: string, path: string, options: { body?: unknown; contentType?: string; query?: Query } = {}): Promise<T> {
    const fullPath = withQuery(path, options.query);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    return new Promise<T>((resolve, reject) => {
      const req = https.request(
        {
          protocol: this.server.protocol,
          hostname: this.server.hostname,
          port: this.server.port,
          path: fullPath,
          method,
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.token}`,
            accept: 'application/json',
            'user-agent': 'hrto-bench',
            ...(payload ? { 'content-type': options.contentType ?? 'application/json', 'content-length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 400) return reject(new KubeError(status, method, fullPath, text));
            try {
              resolve((text ? JSON.parse(text) : {}) as T);
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
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
   * A list, then a watch from the list's resourceVersion, rewatched from the last seen version when
   * the server closes it and relisted on 410 Gone. `onEvent` gets the list's items as ADDED first;
   * the returned promise resolves once they were delivered (synced).
   */
  async informer(path: string, query: Query, onEvent: (type: string, obj: RawObject) => void): Promise<{ stop: () => void }> {
    let stopped = false;
    let current: ClientRequest | undefined;
    let rv = '';
    const relist = async () => {
      const listed = await this.list(path, query);
      for (const item of listed.items) onEvent('ADDED', item);
      rv = listed.resourceVersion;
    };
    await relist();
    const watchOnce = () =>
      new Promise<void>((resolve) => {
        const fullPath = withQuery(path, { ...query, watch: 1, resourceVersion: rv, allowWatchBookmarks: true });
        const req = https.request(
          {
            protocol: this.server.protocol,
            hostname: this.server.hostname,
            port: this.server.port,
            path: fullPath,
            method: 'GET',
            ca: this.ca,
            agent: false,
            headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', 'user-agent': 'hrto-bench' },
          },
          (res) => {
            if ((res.statusCode ?? 0) >= 400) {
              res.resume();
              if (res.statusCode === 410) rv = '';
              resolve();
              return;
            }
            let buffered = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              buffered += chunk;
              let nl: number;
              while ((nl = buffered.indexOf('\n')) >= 0) {
                const line = buffered.slice(0, nl);
                buffered = buffered.slice(nl + 1);
                if (!line.trim()) continue;
                const event = JSON.parse(line) as { type: string; object: RawObject & { code?: number } };
                if (event.type === 'ERROR') {
                  if (event.object.code === 410) rv = '';
                  continue;
                }
                if (event.object.metadata?.resourceVersion) rv = event.object.metadata.resourceVersion;
                if (event.type !== 'BOOKMARK') onEvent(event.type, event.object);
              }
            });
            res.on('end', () => resolve());
            res.on('error', () => resolve());
            res.on('close', () => resolve());
          },
        );
        req.on('error', () => resolve());
        current = req;
        req.end();
      });
    void (async () => {
      while (!stopped) {
        if (!rv) await relist().catch(() => undefined);
        await watchOnce();
        if (!stopped) await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return {
      stop: () => {
        stopped = true;
        current?.destroy();
      },
    };
  }

  close(): void {
    this.agent.destroy();
  }
}
