// Holds a change from helm-controller by suspending the release (see rollout/hold.ts): reads what
// every source targeting a release decides for it, takes the next step of the hold, writes it in one
// conditional patch, and says whether a trigger of the release must wait. The releases hrto marked
// are known from the informer, for the held-releases gauges and to wake them when a source goes.
import { type EventRecorder, helmReleaseObject } from './events.js';
import type { KubeWriter, ReleasePatch } from './kube/client.js';
import { statusOf } from './kube/api.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { describeGate, type Gate } from './rollout/gate.js';
import { type HoldMark, holdPatch, type HoldReason, holdReason, holdState, type HoldStep, nextHoldStep, parseHoldMark } from './rollout/hold.js';
import { encodeRolloutRecord, parseRolloutRecord, type RolloutRecord } from './rollout/health.js';
import { shortDigest } from './rollout/facts.js';
import type { TargetAction } from './decide.js';
import type { ReleaseObject } from './sources/objects.js';
import { ManyToMany } from './mapping/index.js';

/** What one source decides for a release. */
export interface SourceRow {
  source: string;
  digest: string;
  action: TargetAction;
  gate?: Exclude<Gate, { gate: 'open' }> | undefined;
}

export interface HolderOptions {
  annotation: string;
  /** hrto's trigger record: a change that slipped through is recorded there as that wave's result. */
  recordAnnotation: string;
  getRelease(key: string): ReleaseObject | undefined;
  /** Whether anything could hold this release (a wave, windows, an in-flight limit): else no read at all. */
  mayHold(release: ReleaseObject): boolean;
  /** What each source targeting the release decides for it, from the cache. */
  rowsFor(release: ReleaseObject): SourceRow[];
  /** Sources whose trigger of the release waits for a slot under --max-upgrades-in-flight. */
  waitingForSlot(release: string): readonly { source: string; digest: string }[];
  writer: KubeWriter;
  events: Pick<EventRecorder, 'emit'>;
  metrics: Metrics;
  log: Logger;
  now(): number;
  /** --dry-run: say what would be held, write nothing (and so tell no Event at every look). */
  dryRun: boolean;
}

export type HoldOutcome = 'retry' | { held: boolean };

/** The contents a mark holds, for a message: `ConfigMap/ns/name sha256:…, …`. */
const heldContents = (mark: HoldMark): string => Object.entries(mark.src).map(([s, d]) => `${s} ${d}`).join(', ');

export class Holder {
  /** Releases carrying hrto's mark, as the cache shows them (derived: a restart rebuilds it). */
  private readonly marked = new Map<string, { reason: HoldReason; since: number; held: boolean }>();
  /** Marked release -> the sources its mark names, and back. */
  private readonly bySource = new ManyToMany<string>();

  constructor(private readonly opts: HolderOptions) {}

  /** Keeps the marked set in step with the cache (informer add/update/delete). */
  track(release: ReleaseObject, deleted = false): void {
    const mark = deleted ? undefined : parseHoldMark(release.holdMark);
    if (!mark) {
      this.marked.delete(release.key);
      this.bySource.delete(release.key);
      return;
    }
    const since = Date.parse(mark.since);
    this.marked.set(release.key, { reason: mark.reason, since: Number.isNaN(since) ? this.opts.now() : since, held: holdState(release.suspend, mark) === 'held' });
    this.bySource.set(release.key, new Map(Object.entries(mark.src)));
  }

  /** Releases hrto marked for this source (to look again when it goes, or no longer targets them). */
  markedFor(source: string): string[] {
    return this.bySource.ownersOf(source);
  }

  /** Releases held now, by the reason they were held for. */
  heldByReason(): Map<HoldReason, number> {
    const counts = new Map<HoldReason, number>();
    for (const m of this.marked.values()) if (m.held) counts.set(m.reason, (counts.get(m.reason) ?? 0) + 1);
    return counts;
  }

  /** Seconds the oldest hold has lasted (0: none). */
  oldestHoldSeconds(): number {
    let oldest = Infinity;
    for (const m of this.marked.values()) if (m.held) oldest = Math.min(oldest, m.since);
    return oldest === Infinity ? 0 : Math.max(0, (this.opts.now() - oldest) / 1000);
  }

  async reconcile(key: string): Promise<HoldOutcome> {
    const release = this.opts.getRelease(key);
    if (!release || (release.holdMark === undefined && !this.opts.mayHold(release))) return { held: false };
    const rows = this.opts.rowsFor(release);
    const holds = new Map<string, { digest: string; reason: HoldReason }>();
    const why = new Map<string, string>();
    for (const row of rows) {
      if (!row.gate) continue;
      holds.set(row.source, { digest: row.digest, reason: holdReason(row.gate) });
      why.set(row.source, describeGate(row.gate));
    }
    // Waiting for a slot holds too, but never blocks the trigger that takes the slot.
    const blocking = holds.size > 0;
    for (const w of this.opts.waitingForSlot(key)) {
      if (holds.has(w.source)) continue;
      holds.set(w.source, { digest: w.digest, reason: 'in-flight' });
      why.set(w.source, 'waiting for a slot under --max-upgrades-in-flight');
    }
    const mark = parseHoldMark(release.holdMark);
    const step = nextHoldStep({
      suspend: release.suspend,
      mark,
      holds,
      triggerDue: rows.some((r) => r.action === 'trigger'),
      version: release.version ?? release.newest?.version ?? 0,
      attempted: release.lastAttemptedConfigDigest && shortDigest(release.lastAttemptedConfigDigest),
      suspendManager: release.suspendManager,
      now: new Date(this.opts.now()).toISOString(),
      short: shortDigest,
    });
    if (step.step === 'none') return { held: blocking };
    if (this.opts.dryRun) {
      this.opts.log.debug({ target: key, step: step.step }, `dry run: would ${step.step} the hold of the HelmRelease`);
      return { held: blocking };
    }
    try {
      const patch = step.step === 'slipped' ? this.slipPatch(release, step.mark) : holdPatch(step, this.opts.annotation, release.resourceVersion);
      await this.opts.writer.patchRelease(release.namespace, release.name, patch);
    } catch (err) {
      const status = statusOf(err);
      // 409: the release changed since the cache saw it (the look is retried on the newer one); 404: gone.
      if (status === 409) return 'retry';
      if (status === 404) return { held: false };
      throw err;
    }
    this.report(release, step, why);
    return { held: blocking };
  }

  /**
   * The hold is over (suspension lifted, mark gone), and the contents it held are recorded as if
   * triggered, with no request to wait for: their outcome is the wave's result.
   */
  private slipPatch(release: ReleaseObject, mark: HoldMark): ReleasePatch {
    const record: RolloutRecord = {
      at: new Date(this.opts.now()).toISOString(),
      v: mark.v,
      f: release.failures ?? 0,
      force: false,
      src: { ...parseRolloutRecord(release.rolloutRecord)?.src, ...mark.src },
      slip: true,
      // Only an ordered release is held: its outcome is read like a trigger's.
      track: true,
    };
    return {
      metadata: { resourceVersion: release.resourceVersion, annotations: { [this.opts.annotation]: null, [this.opts.recordAnnotation]: encodeRolloutRecord(record) } },
      ...(release.suspend ? { spec: { suspend: false } } : {}),
    };
  }

  private report(release: ReleaseObject, step: Exclude<HoldStep, { step: 'none' }>, why: ReadonlyMap<string, string>): void {
    const { log, events, metrics } = this.opts;
    const target = release.key;
    const object = helmReleaseObject(release);
    const reasons = [...why].map(([source, reason]) => `${source} ${reason}`).join('; ');
    metrics.holdSteps.inc({ step: step.step });
    switch (step.step) {
      case 'suspend':
      case 'remark':
        // Once per held content, across restarts: the mark on the release says it was told.
        log.info({ target, sources: step.mark.src, reason: step.mark.reason }, step.step === 'suspend' ? 'suspended the HelmRelease to hold a change from helm-controller' : 'the held contents changed; the HelmRelease stays suspended');
        events.emit(object, 'Normal', 'Held', `${reasons}; suspended so that helm-controller does not apply it either, until the trigger that lets it through resumes it`, { reason: step.mark.reason });
        return;
      case 'lift':
        log.info({ target }, 'lifted the hold: nothing holds the change any more and no trigger is due');
        events.emit(object, 'Normal', 'HoldLifted', 'resumed by hrto: nothing holds a change of its sources any more');
        return;
      case 'override':
        log.warn({ target, by: step.by, sources: step.mark.src }, 'hrto\'s suspension was lifted by someone else: taken as an override, not suspended again for these contents');
        events.emit(
          object,
          'Warning',
          'HoldOverridden',
          `hrto's suspension (${heldContents(step.mark)}) was lifted by ${step.by}: the held change reaches the release at its next reconcile, outside its rollout; hrto does not suspend it again for these contents`,
          { by: step.by },
        );
        return;
      case 'slipped': {
        const how = step.mark.over ? `after ${step.mark.over} lifted hrto's suspension` : 'in a reconcile that began before hrto suspended it';
        log.warn({ target, sources: step.mark.src, by: step.mark.over }, 'helm-controller applied a held change without hrto\'s trigger; counted as its wave\'s result');
        events.emit(
          object,
          'Warning',
          'UpgradedOutsideRollout',
          `helm-controller applied ${heldContents(step.mark)} ${how}, outside its rollout: reported, and counted as its wave's result (a failure halts the waves above it)`,
          { by: step.mark.over ?? '' },
        );
        return;
      }
      case 'unmark':
        log.debug({ target }, 'an override\'s contents are no longer held; removed the mark');
        return;
    }
  }
}
