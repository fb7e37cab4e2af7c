// Flux's event API (event.toolkit.fluxcd.io/v1beta1 Event): with --events-addr, every Event hrto
// records is also posted to notification-controller, as Flux's own controllers do, so an Alert on a
// HelmRelease tells why it upgraded. Delivery never holds up a trigger: posts are queued and sent in
// the background, with Flux's policy (5 s timeout; retries on connection errors and 5xx; a 429 is
// notification-controller refusing a repeat, so it is not retried).
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventType, InvolvedObject } from './events.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';

export interface FluxEvent {
  involvedObject: { apiVersion: string; kind: string; namespace: string; name: string; uid: string };
  severity: 'info' | 'error';
  timestamp: string;
  message: string;
  reason: string;
  metadata?: Record<string, string>;
  reportingController: string;
  reportingInstance: string;
}

/**
 * notification-controller keeps only metadata keys prefixed with the involved object's API group
 * (helm.toolkit.fluxcd.io/ for a HelmRelease, / for a ConfigMap) and strips that prefix; what is
 * left, hrto's key domain and the name, is what an Alert's provider receives.
 */
export function fluxMetadataKey(apiVersion: string, keyDomain: string, name: string): string {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  return `${group}/${keyDomain}/${name}`;
}

export function toFluxEvent(
  object: InvolvedObject,
  type: EventType,
  reason: string,
  message: string,
  metadata: Record<string, string>,
  who: { keyDomain: string; controller: string; instance: string; now: Date },
): FluxEvent {
  const entries = Object.entries(metadata).map(([k, v]) => [fluxMetadataKey(object.apiVersion, who.keyDomain, k), v] as const);
  return {
    involvedObject: { ...object },
    severity: type === 'Warning' ? 'error' : 'info',
    timestamp: who.now.toISOString().replace(/\.\d+Z$/, 'Z'),
    message,
    reason,
    ...(entries.length > 0 ? { metadata: Object.fromEntries(entries) } : {}),
    reportingController: who.controller,
    reportingInstance: who.instance,
  };
}

export type PostResult = 'success' | 'duplicate' | 'failed' | 'retry';

/** What one answer means: Flux's retry policy (go-retryablehttp's, with 429 as a refused repeat). */
export function classifyAnswer(status: number | undefined): PostResult {
  if (status === undefined || status >= 500) return 'retry';
  if (status === 429) return 'duplicate';
  return status >= 200 && status < 300 ? 'success' : 'failed';
}

export interface FluxEventPosterOptions {
  address: string;
  log: Logger;
  metrics: Metrics;
  timeoutMs?: number;
  /** Attempts after the first. */
  retries?: number;
  /** Wait before the first retry; doubles each time, up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Posts waiting beyond this drop the oldest: a dead endpoint must not grow memory. */
  maxPending?: number;
  concurrency?: number;
}

export class FluxEventPoster {
  private readonly pending: FluxEvent[] = [];
  private active = 0;
  private readonly stopped = new AbortController();
  private readonly idle = new Set<() => void>();
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly o: Required<Omit<FluxEventPosterOptions, 'log' | 'metrics' | 'address'>>;

  constructor(private readonly opts: FluxEventPosterOptions) {
    this.url = new URL(opts.address);
    this.o = {
      timeoutMs: opts.timeoutMs ?? 5_000,
      retries: opts.retries ?? 4,
      backoffMs: opts.backoffMs ?? 1_000,
      maxBackoffMs: opts.maxBackoffMs ?? 30_000,
      maxPending: opts.maxPending ?? 1_000,
      concurrency: opts.concurrency ?? 4,
    };
    const agentOptions = { keepAlive: true, maxSockets: this.o.concurrency };
    this.agent = this.url.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** Queues the event and returns at once. */
  post(event: FluxEvent): void {
    if (this.stopped.signal.aborted) return;
    if (this.pending.length >= this.o.maxPending) {
      const dropped = this.pending.shift()!;
      this.opts.metrics.fluxEventPosts.inc({ result: 'dropped' });
      this.opts.log.warn({ reason: dropped.reason, object: describe(dropped), address: this.opts.address }, 'Flux event dropped: too many waiting to be posted');
    }
    this.pending.push(event);
    this.pump();
  }

  /** Resolves when nothing is queued or in flight (tests; a graceful stop). */
  drained(): Promise<void> {
    if (this.active === 0 && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  /** Gives the queue up to `graceMs` to drain, then stops retrying. */
  async stop(graceMs: number): Promise<void> {
    await Promise.race([this.drained(), sleep(graceMs, undefined, { ref: false })]);
    this.stopped.abort();
    this.agent.destroy();
  }

  private pump(): void {
    while (this.active < this.o.concurrency && this.pending.length > 0) {
      const event = this.pending.shift()!;
      this.active++;
      void this.deliver(event).finally(() => {
        this.active--;
        this.pump();
        if (this.active > 0 || this.pending.length > 0) return;
        for (const resolve of this.idle) resolve();
        this.idle.clear();
      });
    }
  }

  private async deliver(event: FluxEvent): Promise<void> {
    const body = JSON.stringify(event);
    for (let attempt = 0; ; attempt++) {
      let status: number | undefined;
      let detail: string;
      try {
        status = await this.send(body);
        detail = `HTTP ${status}`;
      } catch (err) {
        detail = (err as Error).message;
      }
      const result = classifyAnswer(status);
      if (result === 'retry' && attempt < this.o.retries && !this.stopped.signal.aborted) {
        try {
          await sleep(Math.min(this.o.maxBackoffMs, this.o.backoffMs * 2 ** attempt), undefined, { ref: false, signal: this.stopped.signal });
        } catch {
          // stopped while waiting
        }
        if (!this.stopped.signal.aborted) continue;
      }
      const counted = result === 'retry' ? 'failed' : result;
      this.opts.metrics.fluxEventPosts.inc({ result: counted });
      if (counted === 'failed') {
        this.opts.log.warn({ reason: event.reason, object: describe(event), address: this.opts.address, attempts: attempt + 1, err: detail }, 'cannot post Flux event');
      }
      return;
    }
  }

  private send(body: string): Promise<number> {
    const transport = this.url.protocol === 'https:' ? https : http;
    return new Promise<number>((resolve, reject) => {
      const req = transport.request(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      req.setTimeout(this.o.timeoutMs, () => req.destroy(new Error(`timed out after ${this.o.timeoutMs}ms`)));
      req.on('error', reject);
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.end(body);
    });
  }
}

const describe = (event: FluxEvent): string => `${event.involvedObject.kind}/${event.involvedObject.namespace}/${event.involvedObject.name}`;
