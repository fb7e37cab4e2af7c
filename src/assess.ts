// Everything one source's decision needs, read from the caches and indexes (no I/O): its targets
// (named in its annotations, plus valuesFrom readers under autodiscovery), what is recorded on it,
// and the plan. The reconciler acts on it; `hrto explain` reports it.
import type { Config } from './config.js';
import { decide, type Plan, type TargetInput } from './decide.js';
import { parseKeyDigests } from './digest.js';
import { CrossNamespaceRefError, InvalidReferenceError } from './errors.js';
import { type Keys, TRIGGER_DISABLED } from './keys.js';
import type { ValuesIndex } from './mapping/index.js';
import { type ObjectRef, parseTargets, refKey } from './mapping/targets.js';
import { carriedContent, type FactsContext, namesContent, type Placement, rolloutFacts } from './rollout/facts.js';
import type { Stage } from './rollout/gate.js';
import { parsePlan, PlanError, type RolloutPlan, stepName, stepOf } from './rollout/plan.js';
import { parseSelector } from './selector.js';
import { watchedKinds } from './sources/caches.js';
import type { ReleaseObject, SourceKind, SourceObject } from './sources/objects.js';

export interface AssessContext {
  keys: Keys;
  defaultNamespace: string;
  values: ValuesIndex;
  /** HelmReleases reading a source through valuesFrom are its targets, named or not. */
  autodiscovery: boolean;
  /** Leave same-namespace valuesFrom readers of reconcile.fluxcd.io/watch=Enabled sources to helm-controller. */
  deferToFluxWatch: boolean;
  noCrossNamespaceRefs: boolean;
  /** Empty: every namespace; otherwise HelmReleases elsewhere are beyond this instance's reach. */
  watchNamespaces: readonly string[];
  /** The kinds of source watched: without Secret, valuesFrom references to Secrets are ignored. */
  sourceKinds: ReadonlySet<SourceKind>;
  /** Matches this instance's --helmrelease-label-selector. */
  inScope(release: ReleaseObject): boolean;
  getRelease(key: string): ReleaseObject | undefined;
  /** Windows and waves: how the releases' rollout annotations are read. */
  rollout: FactsContext;
  /** Epoch ms: windows are open or closed, and health deadlines pass, at this time. */
  now(): number;
  /** A trigger of the release for this source's digest is asked for and not sent yet (it holds a maxUpdate slot). */
  requested?(release: string, source: string, digest: string): boolean;
}

/** The decision's context from the configuration, built alike for the controller and explain. */
export function decisionContext(config: Config, keys: Keys): Omit<AssessContext, 'values' | 'getRelease'> {
  const selector = parseSelector(config.helmreleaseLabelSelector);
  return {
    keys,
    defaultNamespace: config.defaultNamespace,
    autodiscovery: config.autodiscovery,
    deferToFluxWatch: config.deferToFluxWatch,
    noCrossNamespaceRefs: config.noCrossNamespaceRefs,
    watchNamespaces: config.watchNamespaces,
    sourceKinds: new Set(watchedKinds(config).map(([kind]) => kind)),
    inScope: (release) => selector.matches(release.labels),
    rollout: { waveAnnotation: keys.wave, windowsAnnotation: keys.triggerWindows, triggerWindows: config.triggerWindows, waveTimeoutMs: config.waveTimeoutMs },
    now: Date.now,
  };
}

export interface Recorded {
  digest: string | undefined;
  keyDigests: Record<string, string>;
}

export function recordedOn(src: SourceObject, keys: Keys): Recorded {
  return { digest: src.annotations[keys.configDigest], keyDigests: parseKeyDigests(src.annotations[keys.keyDigests]) };
}

/** The source's named targets; throws InvalidReferenceError (or CrossNamespaceRefError under the policy). */
function namedTargets(src: SourceObject, ctx: AssessContext, hasReaders: boolean): readonly ObjectRef[] {
  try {
    const named = parseTargets(src.annotations, ctx.keys, ctx.defaultNamespace);
    const foreign = named.find((t) => t.namespace !== src.namespace);
    if (ctx.noCrossNamespaceRefs && foreign) {
      throw new CrossNamespaceRefError(
        ctx.keys.targetNamespace,
        foreign.namespace,
        `targets HelmReleases in namespace ${foreign.namespace}, and --no-cross-namespace-refs allows only ${src.namespace}`,
      );
    }
    // Scoped RBAC grants nothing outside the list: refuse up front rather than meet a 403.
    const beyond = ctx.watchNamespaces.length > 0 ? named.find((t) => !ctx.watchNamespaces.includes(t.namespace)) : undefined;
    if (beyond) {
      throw new CrossNamespaceRefError(
        ctx.keys.targetNamespace,
        beyond.namespace,
        `targets HelmReleases in namespace ${beyond.namespace}, outside --watch-namespaces (${ctx.watchNamespaces.join(', ')})`,
      );
    }
    return named;
  } catch (err) {
    // A source that only autodiscovery knows about needs no names of its own.
    if (err instanceof InvalidReferenceError && !(err instanceof CrossNamespaceRefError) && err.value === undefined && ctx.autodiscovery && hasReaders) return [];
    throw err;
  }
}

export type Assessment = { invalid: InvalidReferenceError } | { plan: Plan };

/** The source's rollout plan, or why it cannot be read (its changes are then held: fail closed). */
export function sourcePlan(src: SourceObject, keys: Keys): RolloutPlan | { invalid: string } | undefined {
  const text = src.annotations[keys.rolloutPlan];
  if (text === undefined) return undefined;
  try {
    return parsePlan(text, keys.rolloutPlan);
  } catch (err) {
    if (err instanceof PlanError) return { invalid: err.message };
    throw err;
  }
}

/** Where the plan puts a release: the first step selecting it, after the last step, or never. */
function place(plan: RolloutPlan | { invalid: string }, release: ReleaseObject): Placement {
  if ('invalid' in plan) return plan;
  const step = stepOf(plan, release.labels);
  return step === 'never' ? { never: true } : { step, bakeMs: plan.steps[step]?.bakeMs ?? 0 };
}

/** The plan's steps as the gate sees them, with the unselected releases' step after the last. */
const stagesOf = (plan: RolloutPlan): Stage[] => [...plan.steps, undefined].map((s, i) => ({ name: stepName(plan, i), maxUpdate: s?.maxUpdate }));

/**
 * Decides for one source. `recorded` is what is known to be recorded (the object's annotations, or a
 * newer write of this process); `triggered` the digests already triggered per target.
 */
export function assess(src: SourceObject, ctx: AssessContext, recorded: Recorded, triggered?: ReadonlyMap<string, string>): Assessment {
  const consumers = ctx.values.consumersOf(src.key);
  let named: readonly ObjectRef[];
  try {
    named = namedTargets(src, ctx, consumers.length > 0);
  } catch (err) {
    if (err instanceof InvalidReferenceError) return { invalid: err };
    throw err;
  }
  const byRef = new Map(consumers.map((c) => [refKey(c.ref), c]));
  const refs = new Map(named.map((ref) => [refKey(ref), ref]));
  if (ctx.autodiscovery) for (const c of consumers) refs.set(refKey(c.ref), c.ref);
  const now = ctx.now();
  // A plan reaches only the releases the source targets anyway: it orders them, it adds none.
  const plan = sourcePlan(src, ctx.keys);
  const targets = Array.from(refs, ([key, ref]): TargetInput => {
    const consumer = byRef.get(key);
    const release = ctx.getRelease(key);
    const rollout = release && rolloutFacts(release, src.key, src.digest, ctx.rollout, now, plan && place(plan, release));
    if (rollout && ctx.requested?.(key, src.key, src.digest)) rollout.requested = true;
    // hrto's record on the release names the content its last trigger carried from this source: a
    // restart or a new leader does not trigger it twice for it.
    const carried = release && carriedContent(release, src.key);
    return {
      ref,
      release,
      triggeredDigest: triggered?.get(key) ?? (carried !== undefined && src.digest.startsWith(carried) ? src.digest : undefined),
      carried,
      rollout,
      inScope: release === undefined || ctx.inScope(release),
      valuesKeys: consumer?.keys,
      // helm-controller watches only sources its releases read through valuesFrom, in their namespace.
      fluxWatches: ctx.deferToFluxWatch && src.fluxWatch && consumer !== undefined,
    };
  });
  const decided = decide({
    digest: src.digest,
    recorded: recorded.digest,
    keyDigests: src.keyDigests,
    recordedKeyDigests: recorded.keyDigests,
    contentChangedAt: src.contentChangedAt,
    sourcePaused: src.annotations[ctx.keys.trigger] === TRIGGER_DISABLED,
    rolloutNow: namesContent(src.annotations[ctx.keys.rolloutNow], src.digest),
    resumed: namesContent(src.annotations[ctx.keys.rolloutResume], src.digest),
    stages: plan && !('invalid' in plan) ? stagesOf(plan) : undefined,
    targets,
  });
  return { plan: plan && 'invalid' in plan ? { ...decided, planError: plan.invalid } : decided };
}
