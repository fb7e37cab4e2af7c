// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: acquire
// when the holder has not renewed within the lease duration (timed by this process's own clock, never
// by comparing clocks), renew every retry period, and give up leading when a renewal has not
// succeeded within the renew deadline, which is shorter than the lease duration, so an old leader
// stops writing before anyone else may start.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { type KubeApi, statusOf } from './kube/api.js';
import type { Logger } from './log.js';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  onStartedLeading(): void;
  onStoppedLeading(): void;
}

/** metav1.MicroTime: RFC3339 with exactly six fraction digits, as the API server parses it. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function defaultIdentity(): string {
  return `${hostname()}_${randomUUID()}`;
}

export class LeaderElector {
  readonly identity: string;
  private leading = false;
  private lastRenewedAt = 0;
  /** The record last seen, and when this process saw it change. */
  private observed: { spec: string; at: number } | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.identity = opts.identity ?? defaultIdentity();
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.opts.namespace}/leases`;
  }

  /** Leading, and the last renewal is recent enough that no one else can have taken over. */
  isLeader(): boolean {
    return this.leading && Date.now() - this.lastRenewedAt < this.opts.renewDeadlineMs;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Sleeps, or less when stopped. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    const { log, retryPeriodMs, renewDeadlineMs } = this.opts;
    log.info({ lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.identity }, 'waiting to become the leader');
    while (!this.stopped && !(await this.tryAcquireOrRenew())) await this.sleep(retryPeriodMs);
    if (this.stopped) return;
    this.leading = true;
    log.info({ lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.identity }, 'became the leader');
    this.opts.onStartedLeading();
    while (!this.stopped) {
      await this.sleep(retryPeriodMs);
      if (this.stopped) return;
      if (await this.tryAcquireOrRenew()) continue;
      if (Date.now() - this.lastRenewedAt >= renewDeadlineMs) {
        this.leading = false;
        log.error({ lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.identity }, 'leader election lost: could not renew the lease in time');
        this.opts.onStoppedLeading();
        return;
      }
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = Date.now();
    const duration = Math.ceil(this.opts.leaseDurationMs / 1000);
    try {
      let lease: Lease;
      try {
        lease = await this.opts.api.json<Lease>('GET', `${this.path}/${this.opts.name}`, { timeoutMs: this.opts.renewDeadlineMs });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        const spec: LeaseSpec = { holderIdentity: this.identity, leaseDurationSeconds: duration, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 };
        await this.opts.api.json('POST', this.path, {
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.opts.name, namespace: this.opts.namespace }, spec },
          timeoutMs: this.opts.renewDeadlineMs,
        });
        this.lastRenewedAt = now;
        return true;
      }
      const spec = lease.spec ?? {};
      const seen = JSON.stringify(spec);
      if (this.observed?.spec !== seen) this.observed = { spec: seen, at: now };
      const holder = spec.holderIdentity ?? '';
      const heldFor = (spec.leaseDurationSeconds ?? duration) * 1000;
      if (holder !== '' && holder !== this.identity && this.observed.at + heldFor > now) return false;
      const ours = holder === this.identity;
      const next: LeaseSpec = {
        holderIdentity: this.identity,
        leaseDurationSeconds: duration,
        acquireTime: ours && spec.acquireTime ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
      };
      await this.opts.api.json('PUT', `${this.path}/${this.opts.name}`, {
        body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: lease.metadata, spec: next },
        timeoutMs: this.opts.renewDeadlineMs,
      });
      this.lastRenewedAt = now;
      this.observed = { spec: JSON.stringify(next), at: now };
      return true;
    } catch (err) {
      // 409: someone else wrote the lease first; anything else: try again next period.
      if (statusOf(err) !== 409) this.opts.log.warn({ err: (err as Error).message, lease: this.opts.name }, 'leader election: cannot read or write the lease');
      return false;
    }
  }

  /** Stops campaigning; a leader hands the lease over at once (no wait for it to expire). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    if (!this.isLeader()) return;
    this.leading = false;
    try {
      const lease = await this.opts.api.json<Lease>('GET', `${this.path}/${this.opts.name}`, { timeoutMs: this.opts.renewDeadlineMs });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = microTime(Date.now());
      await this.opts.api.json('PUT', `${this.path}/${this.opts.name}`, {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: lease.metadata,
          spec: { leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: lease.spec.leaseTransitions ?? 0 },
        },
        timeoutMs: this.opts.renewDeadlineMs,
      });
      this.opts.log.info({ lease: `${this.opts.namespace}/${this.opts.name}` }, 'released the lease');
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not release the lease; it expires on its own');
    }
  }
}
