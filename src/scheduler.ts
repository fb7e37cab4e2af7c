// The trigger stage, keyed by HelmRelease: sources ask for a release to be triggered, and the release
// is patched once for all of them, no sooner than the debounce window after the first ask and the
// minimum interval after its last trigger. Nothing asked is dropped: a request waits, it is never
// discarded, and the sources that asked are woken when their trigger landed (or could not).
import { type EventRecorder, helmReleaseObject } from './events.js';
import type { KubeWriter, ReleasePatch } from './kube/client.js';
import { NotLeaderError } from './errors.js';
import { ApiError, statusOf } from './kube/api.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { shortDigest } from './rollout/facts.js';
import { encodeRolloutRecord, parseRolloutRecord, snapshotBefore } from './rollout/health.js';
import { parseHoldMark, releaseFields } from './rollout/hold.js';
import { countsInFlight } from './rollout/inflight.js';
import { Memory } from './memory.js';
import type { WorkQueue } from './queue.js';
import type { ReleaseObject, SourceObject } from './sources/objects.js';
import type { TokenBucket } from './throttle.js';
import { formatRFC3339Nano, triggerPatch, type TriggerMode } from './trigger.js';

export interface TriggerRequest {
  source: Pick<SourceObject, 'key' | 'kind' | 'namespace' | 'name' | 'digest'>;
  /** When hrto first saw the change (performance.now()), for the latency histogram. */
  seenAt: number | undefined;
  /** The keys that changed, by name (for the Event, the log line and the Flux event). */
  changes?: string | undefined;
  /** An operator let this content through at once (`rollout-now`): windows do not hold it. */
  bypassWindows?: boolean | undefined;
  /** Its outcome gates a rollout (a wave or a plan step): the record asks for the release's status to be kept. */
  tracked?: boolean | undefined;
}

/** How the rollout bears on the trigger itself: asked again when it is due, since debounce moves it in time. */
export interface RolloutPolicy {
  /** The annotation hrto keeps its trigger record in: every trigger writes it, so a restart knows what was sent. */
  recordAnnotation: string;
  /** hrto's hold mark: a trigger of a release hrto holds suspended resumes it in the same patch. */
  holdAnnotation: string;
  /** The release's windows are closed now (or cannot be read): a trigger must not go. */
  windowsClosed(release: ReleaseObject): boolean;
  /** --max-upgrades-in-flight; 0: unlimited. */
  maxInFlight: number;
  /** Triggered releases whose upgrade has not finished, as the cache shows them. */
  inFlight(): number;
}

export interface SchedulerOptions {
  debounceMs: number;
  minIntervalMs: number;
  triggerMode: TriggerMode;
  dryRun: boolean;
  /** Also reset a Stalled release's failure counters (resetAt). */
  resetStalled: boolean;
  /** The global throttle; undefined: unlimited. */
  throttle: TokenBucket | undefined;
  queue: WorkQueue<string>;
  getRelease(key: string): ReleaseObject | undefined;
  /** Called with the requests a release's trigger settled: triggered, or the release gone or suspended. */
  onSettled(release: string, requests: readonly TriggerRequest[], triggered: boolean): void;
  writer: KubeWriter;
  events: EventRecorder;
  metrics: Metrics;
  log: Logger;
  clock: () => bigint;
  rollout: RolloutPolicy;
}

/** How often a trigger waiting for --max-upgrades-in-flight looks again. */
const IN_FLIGHT_POLL_MS = 1_000;

/**
 * How long after a trigger patch whose answer was lost hrto looks whether it landed: long enough
 * for a watch broken with the same connection to come back, short beside any minimum interval.
 */
export const UNANSWERED_RECHECK_MS = 2_000;

/** A trigger patch sent without an answer (the connection broke): it may have landed. */
interface Unanswered {
  requestedAt: string;
  requests: readonly TriggerRequest[];
  reset: boolean;
}

interface Pending {
  firstAt: number;
  requests: Map<string, TriggerRequest>;
  /** The throttle slot reserved for this trigger (epoch ms), once it is due. */
  slot?: number;
}

/** A release fed by many sources keeps the record bounded: the newest entries win. */
const MAX_RECORDED_SOURCES = 16;

function newest(src: Record<string, string>, max: number): Record<string, string> {
  const entries = Object.entries(src);
  return Object.fromEntries(entries.slice(Math.max(0, entries.length - max)));
}

/** When a release may be triggered next: after the debounce window and its minimum interval. */
export function dueAt(firstRequestAt: number, lastTriggeredAt: number | undefined, debounceMs: number, minIntervalMs: number): number {
  return Math.max(firstRequestAt + debounceMs, lastTriggeredAt === undefined ? 0 : lastTriggeredAt + minIntervalMs);
}

/**
 * What this process keeps of one release between its reconciles. Each field says what a restart
 * loses and why that is safe: nothing a decision depends on lives only here.
 */
interface ReleaseMemory {
  /**
   * Requests waiting for the debounce window, the minimum interval, a slot or the throttle. Lost:
   * every source whose content the release's trigger record does not name asks again at its first
   * reconcile (its digest is recorded only once the trigger landed); debounce starts afresh.
   */
  pending?: Pending | undefined;
  /** Requests whose patch is being sent: asked again meanwhile, they must not trigger twice. Lost: with the process. */
  sending?: readonly TriggerRequest[] | undefined;
  /**
   * The last trigger this process made (when its answer came), until the minimum interval after it
   * has passed: requestedAt is dated before the patch may wait in the client's own queue, so the
   * interval counts from the answer. Lost: the requestedAt annotation says when (a little early).
   */
  last?: { at: number; requestedAt: string } | undefined;
  /** The requestedAt of a trigger sent whose record the cache does not show yet (counted in flight). Lost: the cache shows the record. */
  sentRecord?: string | undefined;
  /**
   * A trigger patch whose answer was lost, until the cache says whether it landed. Lost: the new
   * process reads the trigger record; one that landed is not sent again, one that did not is asked again.
   */
  unanswered?: Unanswered | undefined;
  /** The trigger waits for a slot under --max-upgrades-in-flight (held meanwhile). Lost: found again at the next look. */
  waitingSlot?: boolean | undefined;
}

export class TriggerScheduler {
  /** One record per release; an empty one goes by itself. */
  private readonly memory = new Memory<ReleaseMemory>();

  constructor(private readonly opts: SchedulerOptions) {}

  /** The release was deleted: what is kept of it goes, but for requests still to be settled (their sources wait on them). */
  forget(key: string): void {
    this.memory.clear(key, ['last', 'sentRecord', 'unanswered', 'waitingSlot']);
  }

  /** Asks for a trigger of the release; a newer request of the same source replaces the older. */
  request(release: string, request: TriggerRequest): void {
    const pending = (this.memory.remember(release).pending ??= { firstAt: Date.now(), requests: new Map() });
    pending.requests.set(request.source.key, request);
    this.opts.queue.addAfter(release, this.delay(release, pending));
  }

  /** The requests of a release whose trigger waits for a slot under --max-upgrades-in-flight. */
  waitingForSlot(release: string): { source: string; digest: string }[] {
    const m = this.memory.get(release);
    if (!m?.waitingSlot) return [];
    return [...(m.pending?.requests.values() ?? [])].map((r) => ({ source: r.source.key, digest: r.source.digest }));
  }

  /** Whether a trigger for this source's digest is already waiting or being sent. */
  isPending(release: string, source: string, digest: string): boolean {
    const m = this.memory.get(release);
    if (m?.pending?.requests.get(source)?.source.digest === digest) return true;
    return m?.sending?.some((r) => r.source.key === source && r.source.digest === digest) ?? false;
  }

  private lastTriggeredAt(key: string, release: ReleaseObject | undefined): number | undefined {
    let local = this.memory.get(key)?.last;
    if (local && Date.now() - local.at >= this.opts.minIntervalMs) {
      // The interval after it has passed: it bears on nothing any more.
      this.memory.clear(key, ['last']);
      local = undefined;
    }
    const annotated = release?.requestedAt ? Date.parse(release.requestedAt) : NaN;
    if (Number.isNaN(annotated)) return local?.at;
    return local === undefined ? annotated : Math.max(local.at, annotated);
  }

  private delay(key: string, pending: Pending): number {
    const due = dueAt(pending.firstAt, this.lastTriggeredAt(key, this.opts.getRelease(key)), this.opts.debounceMs, this.opts.minIntervalMs);
    return Math.max(0, due - Date.now());
  }

  async reconcile(key: string): Promise<'done' | 'retry'> {
    const pending = this.memory.get(key)?.pending;
    if (!pending) return 'done';
    const release = this.opts.getRelease(key);
    if (!release || release.suspended || release.paused) {
      // The sources decide again: they report it missing, or wait for the resume.
      this.memory.clear(key, ['pending', 'waitingSlot']);
      this.opts.onSettled(key, [...pending.requests.values()], false);
      return 'done';
    }
    this.settleIfLanded(key, release, pending);
    if (pending.requests.size === 0) {
      this.memory.clear(key, ['pending']);
      return 'done';
    }
    const wait = this.delay(key, pending);
    if (wait > 0) {
      this.opts.log.debug({ target: key, waitMs: wait }, 'trigger waits for the debounce window or the minimum interval');
      this.opts.queue.addAfter(key, wait);
      return 'done';
    }
    const { rollout } = this.opts;
    if (![...pending.requests.values()].some((r) => r.bypassWindows) && rollout.windowsClosed(release)) {
      // Debounce or the minimum interval carried it past the window's end: the sources decide again (held).
      this.opts.log.info({ target: key }, 'trigger window closed while the trigger waited; the change is held');
      this.memory.clear(key, ['pending', 'waitingSlot']);
      this.opts.onSettled(key, [...pending.requests.values()], false);
      return 'done';
    }
    const inFlight = rollout.maxInFlight > 0 ? this.upgradesInFlight() : 0;
    if (rollout.maxInFlight > 0 && inFlight >= rollout.maxInFlight) {
      this.opts.log.debug({ target: key, inFlight, max: rollout.maxInFlight }, 'trigger waits for --max-upgrades-in-flight');
      this.memory.remember(key).waitingSlot = true;
      this.opts.queue.addAfter(key, IN_FLIGHT_POLL_MS);
      return 'done';
    }
    this.memory.clear(key, ['waitingSlot']);
    if (this.opts.throttle) {
      if (pending.slot === undefined) {
        const reserved = this.opts.throttle.reserve(Date.now());
        pending.slot = Date.now() + reserved;
        this.opts.metrics.throttleWait.observe(reserved / 1000);
      }
      const slotWait = pending.slot - Date.now();
      if (slotWait > 0) {
        this.opts.queue.addAfter(key, slotWait);
        return 'done';
      }
    }
    const requests = [...pending.requests.values()];
    const m = this.memory.remember(key);
    m.pending = undefined;
    m.waitingSlot = undefined;
    m.sending = requests;
    let triggered: boolean;
    try {
      triggered = await this.fire(release, requests);
    } catch (err) {
      m.sending = undefined;
      // Back in line (newer requests that arrived meanwhile win), retried with backoff by the caller.
      const again = (m.pending ??= { firstAt: pending.firstAt, requests: new Map() });
      for (const r of requests) if (!again.requests.has(r.source.key)) again.requests.set(r.source.key, r);
      if (m.unanswered) {
        // Sent, but the answer was lost: sending again at once could trigger (force-upgrade) twice.
        this.opts.log.warn({ target: key, err: (err as Error).message, recheckMs: UNANSWERED_RECHECK_MS }, 'trigger patch sent but its answer was lost; looking whether it landed before sending it again');
        this.opts.queue.addAfter(key, UNANSWERED_RECHECK_MS);
        return 'done';
      }
      throw err;
    }
    this.opts.onSettled(key, requests, triggered);
    this.memory.clear(key, ['sending']);
    return 'done';
  }

  /**
   * A trigger whose answer was lost landed if the cache shows its requestedAt: its requests are
   * settled and taken out of `pending` (not sent again); those that came after it stay.
   */
  private settleIfLanded(key: string, release: ReleaseObject, pending: Pending): void {
    const lost = this.memory.get(key)?.unanswered;
    if (!lost) return;
    this.memory.clear(key, ['unanswered']);
    if (release.requestedAt !== lost.requestedAt) return;
    const carried = lost.requests.filter((r) => pending.requests.get(r.source.key)?.source.digest === r.source.digest);
    for (const r of carried) pending.requests.delete(r.source.key);
    this.opts.log.info({ target: key, requestedAt: lost.requestedAt }, 'the trigger patch whose answer was lost had landed; not sending it again');
    this.announce(release, lost.requests, lost.requestedAt, lost.reset);
    this.opts.onSettled(key, carried, true);
  }

  /** Tracked triggers not finished: the cache's reading, plus those sent that it does not show yet. */
  upgradesInFlight(): number {
    let sent = 0;
    for (const [key, m] of this.memory.entries()) {
      if (m.sentRecord === undefined) continue;
      const release = this.opts.getRelease(key);
      // Counted by the cache from when it shows the record; a release deleted meanwhile upgrades nothing.
      if (!release || parseRolloutRecord(release.rolloutRecord)?.at === m.sentRecord) this.memory.clear(key, ['sentRecord']);
      else sent++;
    }
    return this.opts.rollout.inFlight() + sent;
  }

  /** One merge patch of the release's annotations; false when the release is gone. */
  private async fire(release: ReleaseObject, requests: readonly TriggerRequest[]): Promise<boolean> {
    const { triggerMode, metrics, log, dryRun, rollout } = this.opts;
    const requestedAt = formatRFC3339Nano(this.opts.clock());
    const reset = this.opts.resetStalled && release.stalled;
    const patch: ReleasePatch = triggerPatch(triggerMode, requestedAt, reset);
    // A release hrto holds is resumed by its trigger, in the same patch.
    const resume = releaseFields(release.suspend, parseHoldMark(release.holdMark), rollout.holdAnnotation);
    if (resume) {
      Object.assign(patch.metadata.annotations, resume.annotations);
      if (resume.spec) patch.spec = resume.spec;
    }
    // In the same patch: what the release looked like before, so its outcome can be read later, by
    // this process or by the next leader, and which contents the trigger carried (so that no
    // process triggers it for them again). Resuming changes the generation, which resets
    // helm-controller's failure count: count from zero then, as for a reset.
    const src = { ...parseRolloutRecord(release.rolloutRecord)?.src };
    for (const r of requests) src[r.source.key] = shortDigest(r.source.digest);
    const track = requests.some((r) => r.tracked === true);
    const record = { at: requestedAt, ...snapshotBefore(release, reset || patch.spec !== undefined), force: triggerMode === 'force', src: newest(src, MAX_RECORDED_SOURCES), track };
    patch.metadata.annotations[rollout.recordAnnotation] = encodeRolloutRecord(record);
    // Counted before the patch leaves: workers deciding meanwhile must see it (--max-upgrades-in-flight).
    const counted = !dryRun && countsInFlight(rollout.maxInFlight, release, track);
    if (counted) this.memory.remember(release.key).sentRecord = requestedAt;
    try {
      // In a dry run the writer patches nothing.
      await this.opts.writer.patchRelease(release.namespace, release.name, patch);
    } catch (err) {
      if (this.memory.get(release.key)?.sentRecord === requestedAt) this.memory.clear(release.key, ['sentRecord']);
      if (statusOf(err) === 404) {
        // Gone since the cache saw it: its sources decide again (missing, or asked once more).
        log.warn({ target: `${release.namespace}/${release.name}`, status: 404 }, 'HelmRelease not found when triggering; its sources decide again');
        return false;
      }
      metrics.triggers.inc({ result: 'error', mode: triggerMode });
      // No status: the connection broke, perhaps after the API server applied the patch.
      if (!(err instanceof ApiError) && !(err instanceof NotLeaderError)) this.memory.remember(release.key).unanswered = { requestedAt, requests, reset };
      throw err;
    }
    this.announce(release, requests, requestedAt, reset);
    return true;
  }

  /** A landed trigger: its metrics, log line, Triggered Event (and Flux event). */
  private announce(release: ReleaseObject, requests: readonly TriggerRequest[], requestedAt: string, reset: boolean): void {
    const { triggerMode, metrics, log, events, dryRun } = this.opts;
    this.memory.remember(release.key).last = { at: Date.now(), requestedAt };
    metrics.triggers.inc({ result: dryRun ? 'dry-run' : 'success', mode: triggerMode });
    const now = performance.now();
    for (const r of requests) if (r.seenAt !== undefined) metrics.triggerLatency.observe((now - r.seenAt) / 1000);
    const what = `${triggerMode === 'force' ? 'forced upgrade' : 'reconcile'}${reset ? ' with a failure reset (Stalled)' : ''}`;
    const sources = requests.map((r) => `${r.source.kind} ${r.source.namespace}/${r.source.name} changed (${shortDigest(r.source.digest)}${r.changes ? `; ${r.changes}` : ''})`);
    log.info(
      {
        sources: requests.map((r) => r.source.key),
        source: requests[0]?.source.key,
        target: `${release.namespace}/${release.name}`,
        digest: requests[0]?.source.digest,
        changedKeys: requests.map((r) => r.changes ?? '').join('; ') || undefined,
        requestedAt,
        mode: triggerMode,
        reset,
        dryRun,
      },
      dryRun ? `dry run: would trigger HelmRelease (${what})` : `triggered HelmRelease (${what})`,
    );
    events.emit(
      helmReleaseObject(release),
      'Normal',
      dryRun ? 'DryRunTrigger' : 'Triggered',
      `${sources.join('; ')}: ${dryRun ? 'would request' : 'requested'} ${what}${dryRun ? '' : ` at ${requestedAt}`}`,
      {
        source: requests.map((r) => r.source.key).join(','),
        digest: requests.map((r) => r.source.digest).join(','),
        keys: requests.map((r) => r.changes ?? '').join('; '),
        requestedAt,
        mode: triggerMode,
      },
      // A trigger's message names its requestedAt; a dry run's does not, and may repeat.
      { unique: !dryRun },
    );
  }
}
