// Raw JSON GETs against the API server with the kubeconfig's credentials. Lists go through here
// rather than the typed client so cached objects are plain JSON, exactly as watch events deliver them.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** An HTTP error from the API server, with its status code and the Kubernetes Status reason. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiError) return err.statusCode;
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.statusCode === 'number') return e.statusCode;
    // client-node's ApiException carries the HTTP status as `code`.
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}

/** The server's Retry-After (429, 503), in ms, from either kind of API error; 0 when absent. */
export function retryAfterMs(err: unknown): number {
  if (err instanceof ApiError) return (err.retryAfterSeconds ?? 0) * 1000;
  const headers = (err as { headers?: Record<string, string> } | undefined)?.headers;
  const seconds = Number(headers?.['retry-after']);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

export async function getJSON<T>(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined> = {},
  options: { timeoutMs?: number; accept?: string } = {},
): Promise<T> {
  return requestJSON<T>(kc, 'GET', path, { query, ...options });
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  timeoutMs?: number;
  accept?: string;
}

/** One JSON request with the kubeconfig's credentials; API errors become ApiError. */
export async function requestJSON<T>(
  kc: KubeConfig,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  { query = {}, body, timeoutMs = 60_000, accept = 'application/json' }: RequestOptions = {},
): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { accept };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const opts: https.RequestOptions = { method, headers };
  await kc.applyToHTTPSOptions(opts);
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<T>((resolve, reject) => {
    const req = transport.request(url, { ...opts, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          try {
            resolve(JSON.parse(body) as T);
          } catch (err) {
            reject(new Error(`${method} ${url.pathname}: invalid JSON: ${(err as Error).message}`));
          }
          return;
        }
        let reason = '';
        let message = body.slice(0, 500);
        try {
          const parsed = JSON.parse(body) as { reason?: string; message?: string };
          reason = parsed.reason ?? '';
          message = parsed.message ?? message;
        } catch {
          // not a Status object; keep the raw text
        }
        const retryAfter = Number(res.headers['retry-after']);
        reject(new ApiError(status, reason, `${method} ${url.pathname}: ${status} ${message}`, Number.isFinite(retryAfter) ? retryAfter : undefined));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: timed out after ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
