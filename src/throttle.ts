// The global trigger throttle: a token bucket across all HelmReleases, so a change fanned out to a
// thousand releases becomes a controlled wave. Reservations, like Go's rate.Limiter.Reserve: each
// trigger gets its own future slot, so waiting triggers are never dropped and never spin.

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
