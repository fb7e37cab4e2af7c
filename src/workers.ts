// The workers that drain the queues: each takes a key, reconciles it and requeues it as the outcome
// asks. They start once the caches are synced and only while leading; shutdown lets in-flight keys
// finish.
import { NotLeaderError } from './errors.js';
import { retryAfterMs, statusOf } from './kube/api.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { WorkQueue } from './queue.js';

/** 'retry' backs off; requeueAfterMs looks again after that long, as controller-runtime's RequeueAfter. */
export type WorkOutcome = 'done' | 'retry' | { requeueAfterMs: number };

export interface Lane {
  /** The queue's metric label. */
  name: string;
  queue: WorkQueue<string>;
  reconcile: (key: string) => Promise<WorkOutcome>;
  workers: number;
}

export interface WorkerPoolOptions {
  lanes: readonly Lane[];
  isLeader: () => boolean;
  metrics: Pick<Metrics, 'reconciles' | 'queueRetries'>;
  log: Logger;
  /** Called once, as the workers start. */
  onStart: () => void;
}

export class WorkerPool {
  private readonly workers: Promise<void>[] = [];
  private synced = false;
  private stopping = false;
  private workersStarted = false;

  constructor(private readonly opts: WorkerPoolOptions) {}

  /** Caches synced: first-sight adoptions are behind us, and workers may start. */
  isSynced(): boolean {
    return this.synced;
  }

  /** Records the caches synced; false if shutdown began meanwhile. */
  markSynced(): boolean {
    this.synced = true;
    return !this.stopping;
  }

  /** Starts the workers once: only after the caches synced, while leading and not shutting down. */
  start(): void {
    if (!this.synced || this.stopping || this.workersStarted || !this.opts.isLeader()) return;
    this.workersStarted = true;
    this.opts.onStart();
    for (const lane of this.opts.lanes) for (let i = 0; i < lane.workers; i++) this.workers.push(this.work(lane));
  }

  /** Stops handing out keys (pending ones are dropped) and waits for in-flight ones. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.opts.lanes.map(({ queue }) => queue.shutdown()));
    await Promise.all(this.workers);
  }

  private async work({ name, queue: q, reconcile }: Lane): Promise<void> {
    const { metrics, log } = this.opts;
    for (;;) {
      const key = await q.get();
      if (key === undefined) return;
      try {
        const outcome = await reconcile(key);
        metrics.reconciles.inc({ queue: name, result: outcome === 'done' ? 'success' : 'requeue' });
        if (outcome === 'retry') {
          metrics.queueRetries.inc({ queue: name });
          q.addRateLimited(key);
        } else {
          q.forget(key);
          // Not a failure: no backoff, just a later look.
          if (outcome !== 'done') q.addAfter(key, outcome.requeueAfterMs);
        }
      } catch (err) {
        metrics.reconciles.inc({ queue: name, result: 'error' });
        // Shutting down (leadership lost): the new leader takes it from here. Otherwise the write was
        // refused during a late lease renewal while this process still leads: retried, never dropped.
        if (err instanceof NotLeaderError && this.stopping) continue;
        metrics.queueRetries.inc({ queue: name });
        // Backoff, but never sooner than the server asked (429 and 503 carry Retry-After).
        const delay = q.addRateLimited(key, retryAfterMs(err));
        if (err instanceof NotLeaderError) {
          log.warn({ queue: name, key, err: err.message, retryInMs: delay }, 'a write was refused while the lease renewal is late; retrying while still leading');
          continue;
        }
        log.error(
          { queue: name, key, status: statusOf(err), err: (err as Error).message, retryInMs: delay, retries: q.retries(key) },
          `${name} reconcile failed; retrying`,
        );
      } finally {
        q.done(key);
      }
    }
  }
}
