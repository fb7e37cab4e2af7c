// A token bucket with reservations, like Go's rate.Limiter.Reserve: each caller gets its own future
// slot, so waiters are never dropped and never spin. It paces two things: triggers across all
// HelmReleases (--max-triggers-per-second) and every request to the API server (--kube-api-qps).

export class TokenBucket {
  private tokens: number;
  private last: number;

  /** `perSecond` tokens a second, at most `burst` saved up; starts full. */
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes a token; returns how many ms until it may be used (0: now). */
  reserve(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.perSecond) * 1000);
  }
}
