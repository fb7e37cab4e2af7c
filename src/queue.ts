// A deduplicating work queue with per-key exponential backoff, shaped like client-go's workqueue:
// a key waits in the queue at most once, is handed to one worker at a time, and a key added while
// it is being processed is queued again when that worker is done. Urgent keys (a user's change)
// are handed out before the others, so a change made during a wave of 10,000 first-sight
// adoptions does not wait for the wave.

export interface BackoffOptions {
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseDelayMs: 100, maxDelayMs: 5 * 60_000 };

export function backoffDelay(failures: number, { baseDelayMs, maxDelayMs }: BackoffOptions): number {
  // 2^failures overflows long before the cap matters; clamp the exponent.
  return Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(failures, 40));
}

/**
 * The longest delay a Node timer keeps (2^31-1 ms, about 24.8 days); longer ones fire after 1 ms.
 * A longer delay fires at this bound instead: the key is looked at early and asks again.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class WorkQueue<K> {
  private readonly queue: K[] = [];
  private readonly urgent: K[] = [];
  private readonly dirty = new Set<K>();
  /** Keys being processed whose next turn is urgent: handed out urgent, or added urgent meanwhile. */
  private readonly urgentNext = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly failures = new Map<K, number>();
  private readonly timers = new Map<K, { at: number; timer: NodeJS.Timeout; urgent: boolean }>();
  private readonly waiters: ((key: K | undefined) => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(private readonly backoff: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Keys waiting to be processed (not counting delayed ones). */
  get depth(): number {
    return this.queue.length + this.urgent.length;
  }

  get delayed(): number {
    return this.timers.size;
  }

  add(key: K, urgent = false): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      if (urgent) this.urgentNext.add(key);
      return;
    }
    if (this.dirty.has(key)) {
      // Already waiting: an urgent add moves it to the front lane. Rare (a user's change), so the
      // linear search is cheap.
      const at = urgent ? this.queue.indexOf(key) : -1;
      if (at >= 0) this.urgent.push(...this.queue.splice(at, 1));
      return;
    }
    this.dirty.add(key);
    const waiter = this.waiters.shift();
    if (waiter) {
      this.hand(key, urgent);
      waiter(key);
    } else {
      (urgent ? this.urgent : this.queue).push(key);
    }
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins, urgent if either is. */
  addAfter(key: K, delayMs: number, urgent = false): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key, urgent);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) {
      pending.urgent ||= urgent;
      return;
    }
    if (pending) clearTimeout(pending.timer);
    const entry = {
      at,
      urgent: urgent || (pending?.urgent ?? false),
      timer: setTimeout(() => {
        this.timers.delete(key);
        this.add(key, entry.urgent);
      }, Math.min(delayMs, MAX_TIMER_MS)),
    };
    this.timers.set(key, entry);
  }

  /**
   * Requeues with exponential backoff, never sooner than `minDelayMs`; returns the delay chosen. A
   * key being processed as urgent stays urgent: a failed trigger of a user's change is retried
   * ahead of a wave too.
   */
  addRateLimited(key: K, minDelayMs = 0): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = Math.max(minDelayMs, backoffDelay(failures, this.backoff));
    this.addAfter(key, delay, this.urgentNext.has(key));
    return delay;
  }

  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Clears the key's backoff after a success. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  /** Resolves with the next key, or undefined once the queue shuts down. */
  get(): Promise<K | undefined> {
    const urgent = this.urgent.length > 0;
    const key = urgent ? this.urgent.shift() : this.queue.shift();
    if (key !== undefined) {
      this.hand(key, urgent);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private hand(key: K, urgent: boolean): void {
    this.dirty.delete(key);
    this.processing.add(key);
    if (urgent) this.urgentNext.add(key);
  }

  done(key: K): void {
    this.processing.delete(key);
    const urgent = this.urgentNext.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key, urgent);
    }
    if (this.processing.size === 0) {
      for (const resolve of this.idleWaiters) resolve();
      this.idleWaiters = [];
    }
  }

  /** Stops handing out keys; resolves when in-flight keys are done. Pending keys are dropped. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.urgent.length = 0;
    this.dirty.clear();
    this.urgentNext.clear();
    for (const resolve of this.waiters.splice(0)) resolve(undefined);
    if (this.processing.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}
