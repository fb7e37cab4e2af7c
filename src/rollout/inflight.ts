// Upgrades in flight, counted as the informer delivers releases instead of by rescanning the fleet
// at every check: a release whose last trigger has no outcome yet is in flight until its outcome
// comes or its wave timeout passes. The count is derived from the cache alone (a restart rebuilds
// it from the first list), and costs one health reading per event of a tracked release.
import type { ReleaseObject } from '../sources/objects.js';
import { parseRolloutRecord, readHealth } from './health.js';

/**
 * Whether a release's triggers count as in flight: every release's under --max-upgrades-in-flight,
 * else those whose outcome gates a rollout (a wave, or a plan step whose record says `track`).
 */
export function countsInFlight(maxInFlight: number, release: ReleaseObject, track = release.tracked === true): boolean {
  return maxInFlight > 0 || release.wave !== undefined || track;
}

export class InFlight {
  /** Release -> until when its trigger is in flight (epoch ms; Infinity: no timeout). */
  private readonly until = new Map<string, number>();

  constructor(
    /** Whether a release's triggers count (countsInFlight). */
    private readonly counts: (release: ReleaseObject) => boolean,
    /** --wave-timeout; 0 or less: none. */
    private readonly timeoutMs: number,
  ) {}

  /** A release as the cache shows it now (informer add or update). */
  set(release: ReleaseObject): void {
    const record = this.counts(release) ? parseRolloutRecord(release.rolloutRecord) : undefined;
    // Read as of the trigger itself, so the timeout alone never ends it here: count() does, by time.
    const at = record && Date.parse(record.at);
    if (record && readHealth(release, record, at!, 0).state === 'progressing') this.until.set(release.key, this.timeoutMs > 0 ? at! + this.timeoutMs : Infinity);
    else this.until.delete(release.key);
  }

  delete(release: ReleaseObject): void {
    this.until.delete(release.key);
  }

  /** Releases in flight at `now`; those past their timeout are dropped as they are met. */
  count(now: number): number {
    let n = 0;
    for (const [key, until] of this.until) {
      if (until > now) n++;
      else this.until.delete(key);
    }
    return n;
  }

  /** Whether this release counts as in flight at `now`. */
  has(key: string, now: number): boolean {
    return (this.until.get(key) ?? -Infinity) > now;
  }
}
