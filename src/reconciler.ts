// One source key -> read the cache -> decide -> ask the scheduler for triggers -> once they landed,
// record the digest. Level-triggered: everything it needs is in the cache and in the digest recorded
// on the source, so a restart or a dropped event loses nothing.
import { assess, type AssessContext, type Recorded, recordedOn } from './assess.js';
import { ACTIONS, type Plan, type TargetAction, type TargetPlan } from './decide.js';
import { diffKeys, encodeKeyHashes, formatKeyChanges } from './changes.js';
import { encodeKeyDigests } from './digest.js';
import { CrossNamespaceRefError, type InvalidReferenceError, truncate } from './errors.js';
import { type EventRecorder, helmReleaseObject, type InvolvedObject } from './events.js';
import type { KubeWriter } from './kube/client.js';
import { statusOf } from './kube/api.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { type ObjectRef, refKey } from './mapping/targets.js';
import { Memory } from './memory.js';
import type { TriggerRequest, TriggerScheduler } from './scheduler.js';
import { describeGate, encodeReported, parseReported } from './rollout/gate.js';
import { ordered, shortDigest, UNHOLDABLE } from './rollout/facts.js';
import type { ReleaseObject, SourceObject } from './sources/objects.js';
import type { SourceRow } from './holds.js';
import { holdStale } from './rollout/hold.js';

export interface ReconcilerOptions extends AssessContext {
  getSource(key: string): SourceObject | undefined;
  /** The sources that name a release or that it reads. */
  sourcesOf(release: ReleaseObject): string[];
  /** Releases carrying hrto's hold mark for a source. */
  markedFor(source: string): string[];
  /** Asks for the hold of a release to be looked at (the release lane). */
  wakeHold(release: string): void;
  writer: KubeWriter;
  events: EventRecorder;
  metrics: Metrics;
  log: Logger;
  scheduler: TriggerScheduler;
}

export type Outcome = 'done' | 'retry' | { requeueAfterMs: number };

/** A window opens, or a deadline passes, at a millisecond: look a little after it. */
const WAKE_MARGIN_MS = 50;

/** A wave, or the plan step it stands for. */
const orderName = (plan: Pick<Plan, 'stages'>, wave: number): string => (plan.stages ? `step ${plan.stages[wave]?.name ?? wave}` : `wave ${wave}`);

/** The first few targets, for a log line or an Event that must stay short. */
const sample = (refs: readonly ObjectRef[], max = 20): string[] => refs.slice(0, max).map(refKey);

function sourceObject(src: SourceObject): InvolvedObject {
  return { apiVersion: 'v1', kind: src.kind, namespace: src.namespace, name: src.name, uid: src.uid };
}

/**
 * Adoption is quiet: installing hrto beside 10,000 labeled sources records 10,000 digests, and says
 * so in one log line once the wave pauses, not in an Event and a line per source.
 */
class AdoptionSummary {
  private sources = 0;
  private releases = 0;
  private firstAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly quietMs = 2_000,
  ) {}

  add(releases: number): void {
    if (this.sources === 0) this.firstAt = performance.now();
    this.sources++;
    this.releases += releases;
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(() => this.flush(), this.quietMs).unref();
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sources === 0) return;
    const seconds = Math.round(performance.now() - this.firstAt) / 1000;
    this.log.info(
      { sources: this.sources, releases: this.releases, seconds },
      this.sources === 1
        ? 'adopted 1 source: recorded its digest without triggering, the releases are newer than the content'
        : `adopted ${this.sources} sources: recorded their digests without triggering, the releases are newer than the content`,
    );
    this.sources = 0;
    this.releases = 0;
  }
}

/**
 * What this process keeps of one source between its reconciles: nothing a decision depends on after
 * a restart. Each field says what a restart loses and why that is safe.
 */
interface SourceMemory {
  /**
   * Releases triggered for the current content (release -> digest), until the cache shows each
   * one's trigger record. Lost: the record on each release says the same once the cache shows it.
   */
  triggered?: Map<string, string>;
  /** What this process recorded on the source, until the cache shows it. Lost: the annotations say it. */
  recorded?: Recorded & { keyHashes: string };
  /** When the current content change was first seen (performance.now()). Lost: that change's latency goes unobserved. */
  changeSeenAt?: number;
  /**
   * Reports already made of the current change (InvalidRollout, CannotHold, TargetNotFound), so a
   * retry or a resync does not repeat them. Lost: each is reported once more by the new process
   * (halts and skipped waves are recorded on the source, and holds on the release, instead).
   */
  told?: Set<string>;
  /** The invalid reference last reported (resourceVersion + message). Lost: reported once more. */
  reportedInvalid?: string;
  /**
   * The last decision, while nothing it read has changed: a change of a source feeding 2,000 held
   * releases asks for 2,000 hold looks, each needing this source's decision. Lost: computed again.
   */
  lastPlan?: { src: SourceObject; epoch: number; at: number; plan: Plan; byRef?: Map<string, TargetPlan> };
  /** How many targets its last decision had: what a decision costs, and so how long wakes are gathered (wakeDelay). Lost: the first wakes are not gathered. */
  targets?: number;
}

/**
 * A decision reads every target of its source, and in a rollout every target's trigger and status
 * change wakes the source: 2,000 releases under one plan would decide 2,000 times over 2,000
 * targets. Wakes by release events are gathered for a time that grows with the targets (none below
 * ten), and a hold look may reuse a decision that young: a ring goes a fraction of a second later.
 */
const GATHER_MS_PER_TARGET = 0.1;
const MAX_GATHER_MS = 500;

/** How long wakes of a source with this many targets are gathered. */
export const gatherMs = (targets: number): number => (targets < 10 ? 0 : Math.min(MAX_GATHER_MS, Math.round(targets * GATHER_MS_PER_TARGET)));

export class Reconciler {
  /** One record per source; forgetSource() drops it whole (the source deleted or no longer watched). */
  private readonly memory = new Memory<SourceMemory>();
  /** Counts release changes that may change decisions: a remembered plan from another epoch is stale. */
  private epoch = 0;

  private readonly adoptions: AdoptionSummary;

  constructor(private readonly opts: ReconcilerOptions) {
    this.adoptions = new AdoptionSummary(opts.log);
  }

  /** Logs the adoptions not summarised yet (on stop). */
  flushAdoptions(): void {
    this.adoptions.flush();
  }

  noteChange(key: string): void {
    this.memory.remember(key).changeSeenAt ??= performance.now();
  }

  forgetSource(key: string): void {
    this.memory.forget(key);
  }

  /** A release changed in a way that may change the decisions of the sources it is read by or named in. */
  decisionsChanged(): void {
    this.epoch++;
  }

  /** Decides for a source, and remembers the plan for the hold looks that follow. */
  private assessed(key: string, src: SourceObject, recorded: Recorded): ReturnType<typeof assess> {
    const assessment = assess(src, this.opts, recorded, this.memory.get(key)?.triggered);
    if ('plan' in assessment) {
      const m = this.memory.remember(key);
      m.lastPlan = { src, epoch: this.epoch, at: this.opts.now(), plan: assessment.plan };
      m.targets = assessment.plan.targets.length;
    }
    return assessment;
  }

  /** How long a release event's wake of this source waits for others to gather (0: at once). */
  wakeDelay(key: string): number {
    return gatherMs(this.memory.get(key)?.targets ?? 0);
  }

  /**
   * The remembered plan while it holds: same source object, no wake time passed, and no
   * decision-changing release event since, or one within the gathering delay (its wake is pending).
   */
  private rememberedPlan(key: string, src: SourceObject): NonNullable<SourceMemory['lastPlan']> | undefined {
    const last = this.memory.get(key)?.lastPlan;
    if (!last || last.src !== src) return undefined;
    const now = this.opts.now();
    if (last.epoch !== this.epoch && now - last.at >= this.wakeDelay(key)) return undefined;
    return last.plan.wakeAt === undefined || now < last.plan.wakeAt ? last : undefined;
  }

  /** The current change is done (rolled out, or back to the recorded content): what was kept of it goes. */
  private changeDone(key: string): void {
    this.memory.clear(key, ['triggered', 'changeSeenAt', 'told', 'lastPlan']);
  }

  /** The state recorded on a source: this process's newer write, or the object's annotations. */
  private recordedFor(key: string, src: SourceObject): Recorded {
    const memo = this.memory.get(key)?.recorded;
    const onObject = recordedOn(src, this.opts.keys);
    if (onObject.digest === src.digest) this.memory.clear(key, ['recorded']);
    return memo?.digest === src.digest ? memo : onObject;
  }

  /** Whether a source naming or read by the release has a rollout plan (which may hold it). */
  planned(release: ReleaseObject): boolean {
    return this.opts.sourcesOf(release).some((key) => this.opts.getSource(key)?.annotations[this.opts.keys.rolloutPlan] !== undefined);
  }

  /** What each source naming or read by a release decides for it now, from the cache (for its hold). */
  rowsFor(release: ReleaseObject): SourceRow[] {
    const rows: SourceRow[] = [];
    for (const key of new Set(this.opts.sourcesOf(release))) {
      const src = this.opts.getSource(key);
      if (!src) continue;
      let last = this.rememberedPlan(key, src);
      if (!last) {
        if ('invalid' in this.assessed(key, src, this.recordedFor(key, src))) continue;
        last = this.memory.get(key)!.lastPlan!;
      }
      last.byRef ??= new Map(last.plan.targets.map((t) => [refKey(t.ref), t]));
      const t = last.byRef.get(release.key);
      if (t) rows.push({ source: key, digest: src.digest, action: t.action, gate: t.gate });
    }
    return rows;
  }

  /**
   * Wakes the hold of each target whose wish (hold this content, or not) differs from its mark, and
   * of each release marked for this source that it no longer targets (a name or a valuesFrom entry gone).
   */
  private wakeHolds(key: string, digest: string, plan: Plan): void {
    const targeted = new Set<string>();
    for (const t of plan.targets) {
      const ref = refKey(t.ref);
      targeted.add(ref);
      const release = this.opts.getRelease(ref);
      if (release && holdStale(release.suspend, release.holdMark, key, shortDigest(digest), t.gate !== undefined)) this.opts.wakeHold(ref);
    }
    for (const release of this.opts.markedFor(key)) if (!targeted.has(release)) this.opts.wakeHold(release);
  }

  async reconcile(key: string): Promise<Outcome> {
    const { keys, log } = this.opts;
    const src = this.opts.getSource(key);
    if (!src) {
      // Deleted or no longer labeled: deleting a source never triggers, and holds nothing.
      this.forgetSource(key);
      for (const release of this.opts.markedFor(key)) this.opts.wakeHold(release);
      return 'done';
    }
    const keyHashes = this.memory.get(key)?.recorded?.keyHashes ?? src.annotations[keys.keyHashes];
    const recorded = this.recordedFor(key, src);
    const assessment = this.assessed(key, src, recorded);
    if ('invalid' in assessment) {
      this.reportInvalid(key, src, assessment.invalid);
      for (const release of this.opts.markedFor(key)) this.opts.wakeHold(release);
      return 'done';
    }
    this.memory.clear(key, ['reportedInvalid']);
    const { plan } = assessment;
    this.wakeHolds(key, src.digest, plan);
    if (plan.upToDate) {
      this.changeDone(key);
      log.debug({ source: key, digest: src.digest }, 'content unchanged since last recorded');
      return 'done';
    }
    return this.carryOut(key, src, plan, keyHashes);
  }

  private async carryOut(key: string, src: SourceObject, plan: Plan, keyHashes: string | undefined): Promise<Outcome> {
    const { log, metrics } = this.opts;
    // One pass over the targets: a source may name thousands, and most reconciles need two groups.
    const byAction = new Map<TargetAction, ObjectRef[]>();
    for (const t of plan.targets) {
      const refs = byAction.get(t.action);
      if (refs) refs.push(t.ref);
      else byAction.set(t.action, [t.ref]);
    }
    const by = (action: TargetAction): readonly ObjectRef[] => byAction.get(action) ?? [];
    const waiting = plan.targets.some((t) => t.action === 'trigger' || t.gate !== undefined);
    // Named once per reconcile, and only when something is to be triggered or told.
    const changes = waiting ? formatKeyChanges(diffKeys(keyHashes, src.keyDigests)) : '';
    for (const t of plan.targets) {
      if (t.action !== 'trigger' || this.opts.scheduler.isPending(refKey(t.ref), key, src.digest)) continue;
      this.opts.scheduler.request(refKey(t.ref), { source: src, seenAt: this.memory.get(key)?.changeSeenAt, changes, bypassWindows: t.bypass === true, tracked: t.tracked === true });
    }
    const missing = by('missing');
    if (missing.length > 0) this.reportMissing(src, missing);
    // One line per kind of wait, however many targets: a source may name thousands.
    for (const [action, refs] of byAction) {
      const { wait } = ACTIONS[action];
      if (wait) log[wait.level]({ source: key, targets: sample(refs), count: refs.length }, wait.msg);
    }
    if (!(await this.reportRollout(key, src, plan, changes))) return 'done';
    if (src.fluxWatch) this.reportUnholdable(key, src);
    const retry = missing.length > 0;
    // Triggers land asynchronously: the scheduler wakes this source when they did. A window that
    // opens or a health deadline that passes has no event of its own: come back then.
    if (!plan.record) {
      if (retry) return 'retry';
      return plan.wakeAt === undefined ? 'done' : { requeueAfterMs: Math.max(0, plan.wakeAt - this.opts.now()) + WAKE_MARGIN_MS };
    }

    const hashes = encodeKeyHashes(src.keyDigests);
    try {
      const keyDigests = Object.keys(plan.keyDigests).length > 0 ? encodeKeyDigests(plan.keyDigests) : null;
      const annotations: Record<string, string | null> = { [this.opts.keys.configDigest]: src.digest, [this.opts.keys.keyDigests]: keyDigests, [this.opts.keys.keyHashes]: hashes };
      // The change is rolled out: what was reported of it goes with it.
      if (src.annotations[this.opts.keys.rolloutReported] !== undefined) annotations[this.opts.keys.rolloutReported] = null;
      await this.opts.writer.patchSource(src.kind, src.namespace, src.name, { metadata: { annotations } });
    } catch (err) {
      if (statusOf(err) === 404) {
        this.forgetSource(key);
        return 'done';
      }
      throw err;
    }
    this.changeDone(key);
    this.memory.remember(key).recorded = { digest: src.digest, keyDigests: plan.keyDigests, keyHashes: hashes };
    const adopted = by('adopt');
    if (adopted.length > 0) {
      metrics.adoptions.inc();
      log.debug({ source: key, digest: src.digest, targets: sample(adopted) }, 'adopted: releases are newer than the content; recorded the digest without triggering');
      this.adoptions.add(adopted.length);
    }
    return 'done';
  }

  /**
   * Held, gated, halted and skipped targets: a log line each time; a halt and a skipped release an
   * Event once per change, recorded on the source first so that no restart reports them again (the
   * hold itself reports Held, once per suspension). False when the source is gone.
   */
  private async reportRollout(key: string, src: SourceObject, plan: Plan, changes: string): Promise<boolean> {
    const { log, events, metrics, keys } = this.opts;
    const planError = this.reportPlan(key, src, plan, changes);
    if (plan.skipped.length === 0 && !plan.targets.some((t) => t.gate)) return true;
    const reported = parseReported(src.annotations[keys.rolloutReported], shortDigest(src.digest));
    const news: (() => void)[] = [];
    const what = `${src.kind} ${src.namespace}/${src.name} (${shortDigest(src.digest)}; ${changes})`;
    // One log line per distinct reason, however many releases wait for it.
    const waits = new Map<string, ObjectRef[]>();
    for (const t of plan.targets) {
      if (!t.gate) continue;
      const release = this.opts.getRelease(refKey(t.ref));
      const reason = describeGate(t.gate);
      const same = waits.get(reason);
      if (same) same.push(t.ref);
      else waits.set(reason, [t.ref]);
      if (t.gate.gate === 'held') {
        // An unreadable plan holds every target: told once, on the source (reportPlan).
        if (release && t.gate.by === 'invalid' && t.gate.message !== planError && this.once(key, `invalid\u0000${refKey(t.ref)}\u0000${t.gate.message}`)) {
          metrics.invalidRollouts.inc();
          events.emit(helmReleaseObject(release), 'Warning', 'InvalidRollout', `${t.gate.message}: changes of ${what} are held until it is fixed`, { source: key, digest: src.digest });
        }
      } else if (t.gate.gate === 'halted' && !reported.halted.includes(refKey(t.gate.failed.ref))) {
        reported.halted.push(refKey(t.gate.failed.ref));
        const halted = plan.targets.filter((x) => x.gate?.gate === 'halted');
        const failed = this.opts.getRelease(refKey(t.gate.failed.ref));
        // In a hub, the release's cluster says where it failed.
        const where = failed?.cluster ? ` (cluster ${failed.cluster})` : '';
        const message =
          `rollout of ${what} halted after ${orderName(plan, t.gate.wave)}: HelmRelease ${refKey(t.gate.failed.ref)}${where} failed (${t.gate.failed.reason}` +
          `${t.gate.failed.message ? `: ${t.gate.failed.message}` : ''}); ${halted.length} release${halted.length === 1 ? '' : 's'} of later ${plan.stages ? 'steps' : 'waves'} not triggered. ` +
          `Change the content again to fix it, or annotate the source ${this.opts.keys.rolloutResume}=${shortDigest(src.digest)} to go on`;
        const meta = { source: key, digest: src.digest, keys: changes, release: refKey(t.gate.failed.ref), reason: t.gate.failed.reason };
        news.push(() => {
          metrics.rolloutsHalted.inc();
          log.warn({ ...meta, notTriggered: sample(halted.map((x) => x.ref)) }, message);
          events.emit(sourceObject(src), 'Warning', 'RolloutHalted', message, meta);
          if (failed) events.emit(helmReleaseObject(failed), 'Warning', 'RolloutHalted', message, meta);
        });
      }
    }
    for (const [reason, refs] of waits) log.info({ source: key, targets: sample(refs), count: refs.length, digest: src.digest, changedKeys: changes }, `${src.kind} change ${reason}`);
    for (const t of plan.skipped) {
      if (reported.skipped.includes(refKey(t.ref))) continue;
      reported.skipped.push(refKey(t.ref));
      const message = `${orderName(plan, t.wave!)}: HelmRelease ${refKey(t.ref)} is ${t.action === 'missing' ? 'missing' : t.action}, so the ${plan.stages ? 'steps after it do' : 'waves above it do'} not wait for it (${what}); it is triggered when it can act again`;
      news.push(() => {
        log.warn({ source: key, target: refKey(t.ref), wave: t.wave, action: t.action }, message);
        events.emit(sourceObject(src), 'Warning', 'WaveSkipped', message, { source: key, digest: src.digest, release: refKey(t.ref) });
      });
    }
    if (news.length === 0) return true;
    try {
      await this.opts.writer.patchSource(src.kind, src.namespace, src.name, { metadata: { annotations: { [keys.rolloutReported]: encodeReported(reported) } } });
    } catch (err) {
      if (statusOf(err) === 404) {
        this.forgetSource(key);
        return false;
      }
      throw err;
    }
    for (const report of news) report();
    return true;
  }

  /**
   * The source's plan: unreadable (every target held), told once on the source; a target with its
   * own wave annotation, told once on the release (the plan orders it). Returns the plan's error.
   */
  private reportPlan(key: string, src: SourceObject, plan: Plan, changes: string): string | undefined {
    const { keys, events, metrics, log } = this.opts;
    const { planError, stages } = plan;
    if (planError !== undefined) {
      if (this.once(key, `plan\u0000${planError}`)) {
        metrics.invalidRollouts.inc();
        log.warn({ source: key, annotation: keys.rolloutPlan }, `invalid rollout plan: ${planError}; changes of this source are held until it is fixed`);
        events.emit(sourceObject(src), 'Warning', 'InvalidRollout', `${planError}: changes of ${src.kind} ${src.namespace}/${src.name} (${shortDigest(src.digest)}; ${changes}) are held until it is fixed`, { source: key, digest: src.digest });
      }
      return planError;
    }
    if (!stages) return undefined;
    for (const t of plan.targets) {
      const release = this.opts.getRelease(refKey(t.ref));
      if (release?.wave === undefined || !this.once(key, `wave-and-plan\u0000${release.key}`)) continue;
      metrics.invalidRollouts.inc();
      const message = `has ${keys.wave}=${release.wave.slice(0, 16)} and ${src.kind} ${src.namespace}/${src.name} orders it by its rollout plan (${orderName(plan, t.wave ?? stages.length - 1)}): the plan wins for this source's changes, the wave is ignored`;
      log.warn({ source: key, target: release.key }, message);
      events.emit(helmReleaseObject(release), 'Warning', 'InvalidRollout', message, { source: key, digest: src.digest });
    }
    return undefined;
  }

  /** Waved or windowed readers of a source helm-controller watches itself: a Warning once per change. */
  private reportUnholdable(key: string, src: SourceObject): void {
    for (const { ref } of this.opts.values.consumersOf(key)) {
      const release = this.opts.getRelease(refKey(ref));
      if (!release || !ordered(release, this.opts.rollout) || !this.once(key, `unholdable\u0000${src.digest}\u0000${release.key}`)) continue;
      this.opts.log.warn({ source: key, target: release.key }, UNHOLDABLE);
      this.opts.events.emit(helmReleaseObject(release), 'Warning', 'CannotHold', `${src.kind} ${src.namespace}/${src.name}: ${UNHOLDABLE}`, { source: key, digest: src.digest });
    }
  }

  /** True the first time a fingerprint is seen for this source (until its digest is recorded). */
  private once(source: string, fingerprint: string): boolean {
    const m = this.memory.remember(source);
    const seen = (m.told ??= new Set());
    if (seen.has(fingerprint)) return false;
    seen.add(fingerprint);
    return true;
  }

  /** The scheduler's report: remember what landed so the source can record its digest. */
  settled(release: string, requests: readonly TriggerRequest[], triggered: boolean): string[] {
    for (const { source } of triggered ? requests : []) {
      const m = this.memory.remember(source.key);
      (m.triggered ??= new Map()).set(release, source.digest);
    }
    // A landed trigger changes its sources' decisions, as a release event does.
    if (triggered) this.epoch++;
    return requests.map((r) => r.source.key);
  }

  /** Once per change and set of missing releases: the retries that follow say nothing new. */
  private reportMissing(src: SourceObject, refs: readonly ObjectRef[]): void {
    if (!this.once(src.key, `missing\u0000${src.digest}\u0000${refs.map(refKey).join(',')}`)) {
      this.opts.log.debug({ source: src.key, count: refs.length }, 'target HelmReleases still not found; will retry');
      return;
    }
    this.opts.metrics.missingTargets.inc(refs.length);
    const shown = sample(refs);
    this.opts.log.warn({ source: src.key, targets: shown, count: refs.length }, 'target HelmReleases not found; will retry');
    const more = refs.length > shown.length ? ` and ${refs.length - shown.length} more` : '';
    this.opts.events.emit(
      sourceObject(src),
      'Warning',
      'TargetNotFound',
      `HelmRelease${refs.length > 1 ? 's' : ''} ${shown.join(', ')}${more} not found; will trigger ${refs.length > 1 ? 'them' : 'it'} when ${refs.length > 1 ? 'they appear' : 'it appears'}`,
      { source: src.key, digest: src.digest, targets: shown.join(',') },
    );
  }

  private reportInvalid(key: string, src: SourceObject, err: InvalidReferenceError): void {
    const fingerprint = `${src.resourceVersion}\u0000${err.message}`;
    const m = this.memory.remember(key);
    if (m.reportedInvalid === fingerprint) return;
    m.reportedInvalid = fingerprint;
    const refused = err instanceof CrossNamespaceRefError;
    const reason = refused ? 'cross-namespace' : err.value === undefined ? 'missing' : 'invalid';
    this.opts.metrics.invalidReferences.inc({ kind: src.kind, reason });
    this.opts.log.warn(
      { source: key, annotation: err.annotation, value: err.value === undefined ? undefined : truncate(err.value) },
      `invalid target reference: ${err.message}`,
    );
    this.opts.events.emit(sourceObject(src), 'Warning', refused ? 'CrossNamespaceRefused' : 'InvalidReference', err.message, { source: key, annotation: err.annotation });
  }
}
