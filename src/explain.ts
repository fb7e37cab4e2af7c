// `hrto explain`: which sources feed which HelmReleases, their current and recorded digests, and
// whether a trigger is pending and why; computed by the same assessment the controller acts on.
import { assess, type AssessContext, decisionContext, recordedOn, sourcePlan } from './assess.js';
import { describeStep, stepName } from './rollout/plan.js';
import { formatDuration } from './duration.js';
import type { Config } from './config.js';
import type { KubeApi } from './kube/api.js';
import { diffKeys, formatKeyChanges } from './changes.js';
import { ACTIONS, type TargetAction } from './decide.js';
import { describeGate, type Gate, type Outcome } from './rollout/gate.js';
import { namesContent, ordered, triggeredFor, UNHOLDABLE } from './rollout/facts.js';
import { holdState, parseHoldMark } from './rollout/hold.js';
import { keysFor } from './keys.js';
import type { Logger } from './log.js';
import { ValuesIndex } from './mapping/index.js';
import { refKey } from './mapping/targets.js';
import { buildCaches } from './sources/caches.js';
import { type ReleaseObject, sourceKey, type SourceObject } from './sources/objects.js';

export type Via = 'annotation' | 'valuesFrom' | 'annotation+valuesFrom';

export interface ExplainedSource {
  source: string;
  via: Via;
  /** The keys read through valuesFrom; undefined: the whole content. */
  keys: string[] | undefined;
  digest: string | undefined;
  recorded: string | undefined;
  state: TargetAction | 'refused' | 'unwatched';
  pending: boolean;
  reason: string;
  /** The release's wave, when it has one (its step's index under a plan). */
  wave?: number | undefined;
  /** Its step of the source's rollout plan. */
  step?: string | undefined;
  /** For content not rolled out yet: the keys that changed since the recorded digest, by name. */
  changedKeys?: string | undefined;
  /** Why a would-be trigger waits: held (until when), gated (on which wave), halted (by which failure). */
  gate?: Exclude<Gate, { gate: 'open' }> | undefined;
}

export interface ExplainedRelease {
  release: string;
  exists: boolean;
  suspended: boolean;
  paused: boolean;
  /** The cluster it installs into: its spec.kubeConfig Secret, or 'local'. */
  cluster: string;
  /** hrto's hold: suspended by hrto (held), or lifted by someone else (overridden). */
  hold?: { state: 'held' | 'overridden'; reason: string; since: string; by?: string | undefined; sources: string[] } | undefined;
  sources: ExplainedSource[];
}

export interface ExplainReport {
  releases: ExplainedRelease[];
  /** Sources with a rollout plan: its steps in order (the last one, `unselected`, when those go last), or why it cannot be read. */
  plans?: { source: string; steps: { name: string; text: string }[]; invalid?: string | undefined }[];
  /** Sources whose target annotations are refused: they trigger nothing until fixed. */
  refused: { source: string; reason: string }[];
}



/** Pure: the report from cached sources and releases. */
export function explain(
  sources: readonly SourceObject[],
  releases: readonly ReleaseObject[],
  ctx: Omit<AssessContext, 'getRelease' | 'values'>,
  filter: { namespace?: string | undefined; name?: string | undefined } = {},
  /** --min-trigger-interval: a pending trigger of a release triggered less than this ago waits for it. */
  minTriggerIntervalMs = 0,
): ExplainReport {
  const byKey = new Map(releases.map((r) => [r.key, r]));
  const values = new ValuesIndex(ctx.sourceKinds);
  for (const release of releases) values.set(release);
  const full: AssessContext = { ...ctx, values, getRelease: (key) => byKey.get(key) };
  const rows = new Map<string, ExplainedSource[]>();
  const add = (release: string, row: ExplainedSource): void => {
    const list = rows.get(release) ?? [];
    list.push(row);
    rows.set(release, list);
  };
  const refused: ExplainReport['refused'] = [];
  const plans: NonNullable<ExplainReport['plans']> = [];
  for (const src of sources) {
    const own = sourcePlan(src, ctx.keys);
    if (own) {
      const steps = 'invalid' in own ? [] : own.steps.map((s) => ({ name: s.name, text: describeStep(s) }));
      if (!('invalid' in own) && own.unselected === 'last') steps.push({ name: stepName(own, own.steps.length), text: 'unselected (every release no step selects, last)' });
      plans.push({ source: src.key, steps, invalid: 'invalid' in own ? own.invalid : undefined });
    }
    const recorded = recordedOn(src, ctx.keys);
    const assessment = assess(src, full, recorded);
    if ('invalid' in assessment) {
      refused.push({ source: src.key, reason: assessment.invalid.message });
      continue;
    }
    const readers = new Map(values.consumersOf(src.key).map((c) => [refKey(c.ref), c]));
    const changedKeys = assessment.plan.upToDate ? undefined : formatKeyChanges(diffKeys(src.annotations[ctx.keys.keyHashes], src.keyDigests));
    const { stages } = assessment.plan;
    for (const { ref, action, wave, gate, outcome } of assessment.plan.targets) {
      const reader = readers.get(refKey(ref));
      const release = byKey.get(refKey(ref));
      const named = src.annotations[ctx.keys.targetNames]?.split(',').some((n) => n.trim() === ref.name) ?? false;
      add(refKey(ref), {
        source: src.key,
        via: reader && named ? 'annotation+valuesFrom' : reader ? 'valuesFrom' : 'annotation',
        keys: reader?.keys,
        digest: src.digest,
        recorded: recorded.digest,
        state: action,
        pending: ACTIONS[action].pending,
        reason: `${gate ? describeGate(gate) : action === 'done' && release ? triggeredReason(release, src, outcome, full) : ACTIONS[action].reason}${
          action === 'trigger' && release ? intervalWait(release, minTriggerIntervalMs, full.now()) : ''
        }${
          src.fluxWatch && reader && release && ordered(release, ctx.rollout) ? `; ${UNHOLDABLE}` : ''
        }`,
        wave,
        step: stages && wave !== undefined ? stages[wave]?.name : undefined,
        changedKeys: ACTIONS[action].pending ? changedKeys : undefined,
        gate,
      });
    }
  }
  // valuesFrom references hrto does not watch (yet): missing, or not labeled.
  const watched = new Set(sources.map((s) => s.key));
  for (const release of releases) {
    for (const ref of release.valuesFrom) {
      const key = sourceKey(ref.kind, release.namespace, ref.name);
      if (watched.has(key) || rows.get(release.key)?.some((r) => r.source === key)) continue;
      add(release.key, {
        source: key,
        via: 'valuesFrom',
        keys: [ref.valuesKey],
        digest: undefined,
        recorded: undefined,
        state: 'unwatched',
        pending: false,
        reason: !ctx.sourceKinds.has(ref.kind)
          ? `ignored: ${ref.kind}s are off (--watch-secrets=false)`
          : `not watched: missing${ref.optional ? ' (optional)' : ''}, not labeled yet, or outside this instance's scope`,
      });
    }
  }
  const keys = new Set([...rows.keys(), ...releases.map((r) => r.key)]);
  const out = [...keys]
    .filter((key) => {
      const [namespace, name] = key.split('/');
      return (!filter.namespace || namespace === filter.namespace) && (!filter.name || name === filter.name);
    })
    .sort()
    .map((key) => {
      const release = byKey.get(key);
      const mark = parseHoldMark(release?.holdMark);
      const state = release && holdState(release.suspend, mark);
      return {
        release: key,
        exists: release !== undefined,
        suspended: release?.suspended ?? false,
        paused: release?.paused ?? false,
        cluster: release?.cluster ?? LOCAL,
        hold:
          mark && (state === 'held' || state === 'overridden')
            ? { state, reason: mark.reason, since: mark.since, by: mark.over, sources: Object.keys(mark.src) }
            : undefined,
        sources: (rows.get(key) ?? []).sort((a, b) => a.source.localeCompare(b.source)),
      };
    });
  return { releases: out, refused: refused.filter((r) => !filter.namespace || r.source.split('/')[1] === filter.namespace), ...(plans.length > 0 ? { plans } : {}) };
}

/** A release triggered for this content: when, and what came of it when its outcome gates a rollout. */
function triggeredReason(release: ReleaseObject, src: SourceObject, outcome: Outcome | undefined, ctx: AssessContext): string {
  const record = triggeredFor(release, src.key, src.digest);
  if (!record) return ACTIONS.done.reason;
  const at = `triggered for this content at ${record.at}`;
  if (outcome?.state === 'failed') {
    const resumed = namesContent(src.annotations[ctx.keys.rolloutResume], src.digest);
    return `failed (${outcome.reason}${outcome.message ? `: ${outcome.message}` : ''}) after being ${at}${resumed ? '; the rollout was resumed past it' : '; the rollout is halted on it'}`;
  }
  if (outcome?.state === 'progressing') return `${at}; upgrading`;
  if (outcome?.state === 'baking') return `${at}; upgraded and healthy, baking until ${new Date(outcome.until).toISOString()}`;
  if (outcome?.state === 'succeeded') return `${at}; upgraded and healthy`;
  return at;
}

/** A release triggered less than --min-trigger-interval ago: when its next trigger may go. */
function intervalWait(release: ReleaseObject, minIntervalMs: number, now: number): string {
  const last = release.requestedAt === undefined ? NaN : Date.parse(release.requestedAt);
  if (!(minIntervalMs > 0) || Number.isNaN(last) || last + minIntervalMs <= now) return '';
  return `; waits for --min-trigger-interval (${formatDuration(minIntervalMs)} after its last trigger) until ${new Date(last + minIntervalMs).toISOString()}`;
}

const short = (digest: string | undefined): string => (digest ? `${digest.slice(0, 19)}…` : '-');

/** A release with no spec.kubeConfig installs into the cluster it lives in. */
export const LOCAL = 'local';

/** A table for a terminal; a CLUSTER column once any release installs into another cluster (hub and spoke). */
export function formatReport(report: ExplainReport): string {
  const clusters = report.releases.some((r) => r.cluster !== LOCAL);
  const steps = report.releases.some((r) => r.sources.some((s) => s.step !== undefined));
  const header = ['HELMRELEASE', ...(clusters ? ['CLUSTER'] : []), steps ? 'WAVE/STEP' : 'WAVE', 'SOURCE', 'VIA', 'DIGEST', 'RECORDED', 'STATUS'];
  const lines: string[][] = [header];
  for (const r of report.releases) {
    const hold = r.hold?.state === 'held' ? ` (held by hrto since ${r.hold.since}: ${r.hold.reason})` : r.hold ? ` (hrto's hold lifted by ${r.hold.by})` : '';
    const state = !r.exists ? ' (missing)' : r.suspended ? ' (suspended)' : r.paused ? ' (paused)' : hold;
    const release = [`${r.release}${state}`, ...(clusters ? [r.cluster] : [])];
    if (r.sources.length === 0) lines.push([...release, '-', '-', '-', '-', '-', 'no watched source feeds it']);
    for (const s of r.sources) {
      const via = s.keys ? `${s.via} [${s.keys.join(',')}]` : s.via;
      const status = s.changedKeys ? `${s.reason} (keys: ${s.changedKeys})` : s.reason;
      lines.push([...release, s.step ?? (s.wave === undefined ? '-' : String(s.wave)), s.source, via, short(s.digest), short(s.recorded), status]);
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const table = lines.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
  const refused = report.refused.map((r) => `refused ${r.source}: ${r.reason}`);
  return [table, ...(refused.length > 0 ? ['', ...refused] : [])].join('\n') + '\n';
}

/**
 * Each planned source's rollout, step by step and cluster by cluster (`-o steps`): where its change
 * stands in every ring.
 */
export function formatSteps(report: ExplainReport): string {
  const out: string[] = [];
  for (const plan of report.plans ?? []) {
    out.push(`${plan.source}${plan.invalid ? `: ${plan.invalid}` : ''}`);
    for (const step of plan.steps) {
      out.push(`  step ${step.text}`);
      const byCluster = new Map<string, string[]>();
      for (const r of report.releases) {
        for (const s of r.sources) {
          if (s.source !== plan.source || s.step !== step.name) continue;
          const lines = byCluster.get(r.cluster) ?? [];
          lines.push(`${r.release}: ${s.reason}`);
          byCluster.set(r.cluster, lines);
        }
      }
      if (byCluster.size === 0) out.push('    (no release)');
      for (const [cluster, lines] of [...byCluster].sort(([a], [b]) => a.localeCompare(b))) {
        out.push(`    cluster ${cluster}:`);
        for (const line of lines.sort()) out.push(`      ${line}`);
      }
    }
    const never = report.releases.filter((r) => r.sources.some((s) => s.source === plan.source && s.gate?.gate === 'held' && s.gate.by === 'unselected'));
    if (never.length > 0) out.push(`  never (no step selects them): ${never.map((r) => r.release).join(', ')}`);
  }
  return out.length === 0 ? 'no source has a rollout plan\n' : `${out.join('\n')}\n`;
}

/** Lists the caches once (no watch kept), then reports. */
export async function runExplain(
  config: Config,
  api: KubeApi,
  log: Logger,
  filter: { namespace?: string | undefined; name?: string | undefined },
): Promise<ExplainReport> {
  const keys = keysFor(config.keyDomain);
  const caches = buildCaches(config, keys, api, log, undefined, false);
  caches.start();
  try {
    await caches.waitForSync(config.cacheSyncTimeoutMs);
    return explain(caches.listSources(), caches.listReleases(), decisionContext(config, keys), filter, config.minTriggerIntervalMs);
  } finally {
    await caches.shutdown();
  }
}
