// The one way hrto talks to the API server: every list, watch, patch, Event and Lease goes through
// KubeApi, over keep-alive connections (no TLS handshake per request), with one User-Agent so audit
// logs name hrto, credentials that follow token rotation (re-read every minute and after a 401), a
// client-side rate limit (--kube-api-qps/--kube-api-burst) and a latency figure for every request.
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { ROTATING_CREDENTIALS_TTL_MS, type CredentialSource, type Credentials, type TlsMaterial } from './credentials.js';
import { TokenBucket } from '../throttle.js';
import { lineSplitter } from './lines.js';
import { VERSION } from '../version.js';

export const USER_AGENT = `hrto/${VERSION} (${process.platform}/${process.arch}) node/${process.version}`;

export const MERGE_PATCH = 'application/merge-patch+json';

/**
 * Connections for requests other than watches: HTTP/1.1 sends one request at a time per connection,
 * and each TLS connection costs memory, so a burst queues here rather than opening dozens.
 */
export const REQUEST_CONNECTIONS = 6;

/** What a request was, in the API server's words: its verb and resource. */
export interface RequestKind {
  verb: string;
  resource: string;
}

/** Told of every request, for the rest_client_* metrics. */
export interface ApiObserver {
  /** Answered (code: the HTTP status) or failed without an answer (code: "<error>"). */
  requestDone(kind: RequestKind, code: string, seconds: number): void;
  /** Waited this long for the client-side rate limiter. */
  rateLimited(kind: RequestKind, seconds: number): void;
}

export interface KubeApiOptions {
  userAgent?: string;
  requestConnections?: number;
  /** Requests per second, all kinds together; 0 or absent: unlimited. */
  qps?: number;
  /** Requests that may go at once after a quiet spell (at least 1). */
  burst?: number;
  observer?: ApiObserver;
}

const VERBS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch' };

/**
 * The verb and resource of a request path, as the API server's audit log names them:
 * /api/v1/namespaces/a/configmaps/x -> get configmaps; a collection GET is a list (or a watch).
 */
export function describeRequest(method: string, path: string, watch = false): RequestKind {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  // Skip /api/<version> or /apis/<group>/<version>, then an optional namespaces/<name>.
  let rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : parts;
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const resource = rest[0] ?? 'unknown';
  const named = rest.length > 1;
  const verb = watch ? 'watch' : method === 'GET' ? (named ? 'get' : 'list') : method === 'DELETE' ? (named ? 'delete' : 'deletecollection') : (VERBS[method] ?? method.toLowerCase());
  return { verb, resource: rest[2] ? `${resource}/${rest[2]}` : resource };
}

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
  return err instanceof ApiError ? err.statusCode : undefined;
}

/** The server's Retry-After (429, 503), in ms; 0 when absent. */
export function retryAfterMs(err: unknown): number {
  return err instanceof ApiError ? (err.retryAfterSeconds ?? 0) * 1000 : 0;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Of the body; JSON unless a patch says otherwise. */
  contentType?: string;
  accept?: string;
  timeoutMs?: number;
}

export type WatchHandler = (type: string, object: Record<string, unknown>) => void;

interface Exchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Agents {
  requests: http.Agent;
  watches: http.Agent;
}

const destroy = (agents: Agents): void => {
  agents.requests.destroy();
  agents.watches.destroy();
};

function queryString(query: Query | undefined): string {
  let out = '';
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) out += `${out ? '&' : '?'}${k}=${encodeURIComponent(v)}`;
  return out;
}

/** A response's whole body as text. */
function readText(res: http.IncomingMessage, done: (body: string) => void, fail: (err: Error) => void): void {
  res.setEncoding('utf8');
  let body = '';
  res.on('data', (chunk: string) => (body += chunk));
  res.on('end', () => done(body));
  res.on('error', fail);
}

const tlsFingerprint = (tls: TlsMaterial): string => JSON.stringify([tls.ca, tls.cert, tls.key, tls.rejectUnauthorized, tls.servername]);

function toApiError(method: string, path: string, { status, headers, body }: Exchange): ApiError {
  let reason = '';
  let message = body.slice(0, 500);
  try {
    const parsed = JSON.parse(body) as { reason?: string; message?: string };
    reason = parsed.reason ?? '';
    message = parsed.message ?? message;
  } catch {
    // not a Status object; keep the raw text
  }
  const retryAfter = Number(headers['retry-after']);
  return new ApiError(status, reason, `${method} ${path}: ${status} ${message}`, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
}

export class KubeApi {
  private agents: Agents;
  private fingerprint: string;
  private fetchedAt = Date.now();
  private refreshing: Promise<Credentials> | undefined;
  private parsed: { server: string; at: ReturnType<KubeApi['endpoint']> } | undefined;
  private readonly userAgent: string;
  private readonly requestConnections: number;
  private readonly limiter: TokenBucket | undefined;
  private readonly observer: ApiObserver | undefined;

  private constructor(
    private readonly source: CredentialSource,
    private creds: Credentials,
    options: KubeApiOptions,
  ) {
    this.userAgent = options.userAgent ?? USER_AGENT;
    this.requestConnections = options.requestConnections ?? REQUEST_CONNECTIONS;
    const qps = options.qps ?? 0;
    this.limiter = qps > 0 ? new TokenBucket(qps, Math.max(1, options.burst ?? 1), performance.now()) : undefined;
    this.observer = options.observer;
    this.fingerprint = tlsFingerprint(creds.tls);
    this.agents = this.makeAgents(creds);
  }

  static async create(source: CredentialSource, options: KubeApiOptions = {}): Promise<KubeApi> {
    return new KubeApi(source, await source.get(false), options);
  }

  get server(): string {
    return this.creds.server;
  }

  /** Watches hold a connection each for minutes, so they get their own agent, unbounded. */
  private makeAgents({ server, tls: material }: Credentials): Agents {
    const requests = { keepAlive: true, scheduling: 'lifo' as const, maxSockets: this.requestConnections, maxFreeSockets: this.requestConnections };
    const watches = { keepAlive: true };
    if (!server.startsWith('https:')) return { requests: new http.Agent(requests), watches: new http.Agent(watches) };
    // One TLS context for every connection (Node would otherwise build one per connection).
    const { ca, cert, key, rejectUnauthorized, servername } = material;
    const secure = { secureContext: tls.createSecureContext({ ca, cert, key }), rejectUnauthorized, servername };
    return { requests: new https.Agent({ ...requests, ...secure }), watches: new https.Agent({ ...watches, ...secure }) };
  }

  /** Re-reads the credentials (once for all callers at the same time); a new agent if TLS changed. */
  private refresh(): Promise<Credentials> {
    this.refreshing ??= this.source
      .get(true)
      .then((creds) => {
        this.creds = creds;
        this.fetchedAt = Date.now();
        const fingerprint = tlsFingerprint(creds.tls);
        if (fingerprint !== this.fingerprint) {
          // Open watches finish on the old agent; it is closed once they have reconnected.
          const old = this.agents;
          setTimeout(() => destroy(old), 15 * 60_000).unref();
          this.fingerprint = fingerprint;
          this.agents = this.makeAgents(creds);
        }
        return creds;
      })
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private credentials(): Credentials | Promise<Credentials> {
    return this.source.rotating && Date.now() - this.fetchedAt > ROTATING_CREDENTIALS_TTL_MS ? this.refresh() : this.creds;
  }

  private open(method: string, path: string, query: Query | undefined, creds: Credentials, opts: RequestOptions, payload: string | undefined, watch = false): http.ClientRequest {
    const headers: Record<string, string> = { ...creds.headers, accept: opts.accept ?? 'application/json', 'user-agent': this.userAgent };
    if (payload !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const server = this.endpoint(creds.server);
    const transport = server.protocol === 'https:' ? https : http;
    return transport.request({ ...server, path: server.pathname + path + queryString(query), method, headers, agent: watch ? this.agents.watches : this.agents.requests });
  }

  /** The server URL, parsed once per value (it changes only with the credentials). */
  private endpoint(server: string): { protocol: string; hostname: string; port: string; pathname: string } {
    if (this.parsed?.server !== server) {
      const url = new URL(server);
      // A server URL may carry a path prefix (API gateways, proxies).
      this.parsed = { server, at: { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port, pathname: url.pathname.replace(/\/$/, '') } };
    }
    return this.parsed.at;
  }

  /**
   * Waits for the client-side rate limiter: a reserved slot, in the order requests asked. Nothing
   * to wait for (no limit, or a free slot) returns nothing rather than a promise, so the request
   * leaves at once instead of after other queued work: a trigger's patch is on the reaction path.
   */
  private admit(kind: RequestKind): Promise<void> | undefined {
    const waitMs = this.limiter?.reserve(performance.now()) ?? 0;
    if (waitMs === 0) return undefined;
    this.observer?.rateLimited(kind, waitMs / 1000);
    return sleep(waitMs);
  }

  private record(kind: RequestKind, code: string, started: number): void {
    this.observer?.requestDone(kind, code, (performance.now() - started) / 1000);
  }

  /** One request and its whole answer; `keepBody` false drops a successful answer's body unread. */
  private async exchange(method: string, path: string, opts: RequestOptions, creds: Credentials, keepBody: boolean): Promise<Exchange> {
    const kind = describeRequest(method, path);
    const admitted = this.admit(kind);
    if (admitted) await admitted;
    // Timed from the moment it may go (after the rate limiter) to its last byte.
    const started = performance.now();
    try {
      const answer = await this.roundTrip(method, path, opts, creds, keepBody);
      this.record(kind, String(answer.status), started);
      return answer;
    } catch (err) {
      this.record(kind, '<error>', started);
      throw err;
    }
  }

  private roundTrip(method: string, path: string, opts: RequestOptions, creds: Credentials, keepBody: boolean): Promise<Exchange> {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const timeoutMs = opts.timeoutMs ?? 60_000;
    return new Promise<Exchange>((resolve, reject) => {
      const req = this.open(method, path, opts.query, creds, opts, payload);
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs}ms`)));
      req.on('error', reject);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (!keepBody && status >= 200 && status < 300) {
          res.resume();
          res.on('end', () => resolve({ status, headers: res.headers, body: '' }));
          res.on('error', reject);
          return;
        }
        readText(res, (body) => resolve({ status, headers: res.headers, body }), reject);
      });
      req.end(payload);
    });
  }

  private async call(method: string, path: string, opts: RequestOptions, keepBody: boolean): Promise<string> {
    const creds = this.credentials();
    let answer = await this.exchange(method, path, opts, creds instanceof Promise ? await creds : creds, keepBody);
    // A rotated token: read it again and retry once.
    if (answer.status === 401) answer = await this.exchange(method, path, opts, await this.refresh(), keepBody);
    if (answer.status < 200 || answer.status >= 300) throw toApiError(method, path, answer);
    return answer.body;
  }

  /** A request whose JSON answer is returned. */
  async json<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, opts: RequestOptions = {}): Promise<T> {
    const body = await this.call(method, path, opts, true);
    try {
      return JSON.parse(body) as T;
    } catch (err) {
      throw new Error(`${method} ${path}: invalid JSON: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A write whose answer hrto does not need: it is never parsed (nor, for a Secret, held). */
  async send(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, opts: RequestOptions = {}): Promise<void> {
    await this.call(method, path, opts, false);
  }

  /**
   * Streams a watch: each event to `onEvent` as it arrives. Resolves when the server ends it (or on
   * abort); rejects with ApiError for an error status, or on a broken connection. A connection
   * silent for longer than `idleTimeoutMs` (the server's own timeout has passed) counts as broken.
   */
  async watch(path: string, query: Query, onEvent: WatchHandler, signal: AbortSignal, idleTimeoutMs: number): Promise<void> {
    const kind = describeRequest('GET', path, true);
    const admitted = this.admit(kind);
    if (admitted) await admitted;
    const current = this.credentials();
    const creds = current instanceof Promise ? await current : current;
    // A watch is timed to its response headers: the stream itself lasts minutes by design.
    const started = performance.now();
    let answered = false;
    const answer = (code: string): void => {
      if (!answered) this.record(kind, code, started);
      answered = true;
    };
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      const req = this.open('GET', path, { ...query, watch: true }, creds, {}, undefined, true);
      const onAbort = (): void => {
        req.destroy();
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (err?: Error): void => {
        if (err && !signal.aborted) answer('<error>');
        signal.removeEventListener('abort', onAbort);
        if (err && !signal.aborted) reject(err);
        else resolve();
      };
      req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`watch ${path}: no data for ${idleTimeoutMs}ms`)));
      req.on('error', settle);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        answer(String(status));
        if (status !== 200) {
          const fail = (body: string): void => {
            if (status === 401) void this.refresh().catch(() => {});
            settle(toApiError('GET', path, { status, headers: res.headers, body }));
          };
          readText(res, fail, settle);
          return;
        }
        res.setEncoding('utf8');
        // One JSON event per line.
        const split = lineSplitter((line) => {
          const event = JSON.parse(line) as { type: string; object: Record<string, unknown> };
          onEvent(event.type, event.object);
        });
        res.on('data', (chunk: string) => {
          try {
            split(chunk);
          } catch (err) {
            req.destroy(err instanceof ApiError ? err : new Error(`watch ${path}: ${(err as Error).message}`));
          }
        });
        res.on('end', () => settle());
        res.on('error', settle);
      });
      req.end();
    });
  }

  close(): void {
    destroy(this.agents);
    this.source.close();
  }
}
