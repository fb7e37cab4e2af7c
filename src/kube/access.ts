// "Know your own rights": before any informer starts, hrto asks the API server whether it may do
// each thing its flags will make it do. A missing permission is then one clear line at start (or,
// for Events, a feature turned off), instead of a loop of 403s from informers that retry forever.
// requiredAccess and judgeAccess are pure; reviewAccess is the thin adapter that asks.
import type { Config } from '../config.js';
import { watchedKinds } from '../sources/caches.js';
import type { KubeApi } from './api.js';
import { HELM_GROUP, HELM_PLURAL } from './client.js';

/** What a permission serves: the required ones stop hrto; an optional one only turns itself off. */
export type Feature = 'sources' | 'secrets' | 'autodiscovery' | 'triggers' | 'events' | 'leader-election';

/** Features hrto can run without (everything else is required). */
const OPTIONAL_FEATURES: ReadonlySet<Feature> = new Set<Feature>(['events']);

/** One permission hrto's flags need, in the terms of a SelfSubjectAccessReview. */
export interface Need {
  verb: string;
  /** '' is the core group. */
  group: string;
  resource: string;
  /** '' = every namespace (cluster-wide). */
  namespace: string;
  feature: Feature;
  /** Why hrto needs it, to be read after "needed for". */
  why: string;
}

export const isOptional = (need: Pick<Need, 'feature'>): boolean => OPTIONAL_FEATURES.has(need.feature);

type AccessConfig = Pick<Config, 'watchNamespaces' | 'watchSecrets' | 'autodiscovery' | 'dryRun' | 'leaderElect' | 'leaderElectionNamespace' | 'leaderElectionId'>;

/**
 * Every permission the flags need, one per verb, in the order hrto would first use them. Only what
 * is really sent: a HelmRelease is never read one by one (the informer lists it), a source is read
 * one by one only by autodiscovery, and --dry-run never patches a source or a HelmRelease.
 */
export function requiredAccess(config: AccessConfig): Need[] {
  const scopes = config.watchNamespaces.length > 0 ? config.watchNamespaces : [''];
  const needs: Need[] = [];
  const add = (namespace: string, group: string, resource: string, feature: Feature, why: string, ...verbs: string[]): void => {
    for (const verb of verbs) needs.push({ verb, group, resource, namespace, feature, why });
  };
  for (const namespace of scopes) {
    for (const [kind, resource] of watchedKinds(config)) {
      const feature: Feature = kind === 'Secret' ? 'secrets' : 'sources';
      add(namespace, '', resource, feature, `the informer of labeled ${kind}s`, 'list', 'watch');
      // Autodiscovery reads the metadata of a referenced source not labeled yet (not in the cache).
      if (config.autodiscovery) add(namespace, '', resource, 'autodiscovery', `reading the metadata of ${kind}s HelmReleases read through valuesFrom (autodiscovery)`, 'get');
      if (!config.dryRun) {
        const why = config.autodiscovery ? `recording digests on ${kind}s and marking the ones HelmReleases read` : `recording digests on ${kind}s`;
        add(namespace, '', resource, feature, why, 'patch');
      }
    }
    add(namespace, HELM_GROUP, HELM_PLURAL, 'triggers', 'the informer of HelmReleases', 'list', 'watch');
    if (!config.dryRun) add(namespace, HELM_GROUP, HELM_PLURAL, 'triggers', 'the trigger patch', 'patch');
    // Events are about sources and HelmReleases, so they land in the watched namespaces; a dry run
    // writes them too (DryRunTrigger).
    add(namespace, '', 'events', 'events', 'recording Events', 'create');
    add(namespace, '', 'events', 'events', 'counting repeats of an Event', 'patch');
  }
  if (config.leaderElect) {
    add(config.leaderElectionNamespace, 'coordination.k8s.io', 'leases', 'leader-election', `leader election on the Lease ${config.leaderElectionId}`, 'get', 'create', 'update');
  }
  return needs;
}

/** configmaps, helmreleases.helm.toolkit.fluxcd.io: the resource as kubectl names it. */
export const resourceName = (need: Pick<Need, 'group' | 'resource'>): string => (need.group ? `${need.resource}.${need.group}` : need.resource);

const where = (namespace: string): string => (namespace ? `in namespace ${namespace}` : 'in any namespace (cluster-wide)');

/** "cannot patch helmreleases.helm.toolkit.fluxcd.io in namespace apps" */
export const denial = (need: Need): string => `cannot ${need.verb} ${resourceName(need)} ${where(need.namespace)}`;

/** What else than granting it would do: the flag that makes the permission unneeded. */
function hints(need: Need): string[] {
  const out: string[] = [];
  if (need.resource === 'secrets') out.push('run with --watch-secrets=false');
  if (need.feature === 'autodiscovery') out.push('run with --enable-hr-autodiscovery=false');
  if (need.feature === 'leader-election') out.push('point --leader-election-namespace at a namespace where hrto may');
  // A Role grants in its namespace only: asked cluster-wide, it is denied though those namespaces would do.
  if (!need.namespace && need.feature !== 'leader-election') out.push('if it is granted only in some namespaces (a Role), list them with --watch-namespaces');
  return out;
}

/** The whole line: what is denied, why hrto needs it, and what to do about it. */
export function explainDenial(need: Need): string {
  const line = `${denial(need)} (needed for ${need.why})`;
  const alternatives = hints(need);
  // An optional feature is simply off: no need to urge a grant, only to say how it could be had.
  if (isOptional(need)) return alternatives.length > 0 ? `${line}; ${alternatives.join(', or ')}` : line;
  return `${line}; grant it${alternatives.map((a) => `, or ${a}`).join('')}`;
}

export interface DisabledFeature {
  feature: Feature;
  denied: Need[];
}

export interface AccessVerdict {
  /** hrto cannot start without these. */
  missingRequired: Need[];
  /** Optional features hrto runs without, each with what was denied. */
  disabledFeatures: DisabledFeature[];
}

/** Sorts the answers (allowed[i] answers needs[i]) into what stops hrto and what only turns a feature off. */
export function judgeAccess(needs: readonly Need[], allowed: readonly boolean[]): AccessVerdict {
  if (needs.length !== allowed.length) throw new RangeError(`${allowed.length} answers for ${needs.length} permissions`);
  const denied = needs.filter((_, i) => !allowed[i]);
  const disabled = new Map<Feature, Need[]>();
  for (const need of denied.filter(isOptional)) disabled.set(need.feature, [...(disabled.get(need.feature) ?? []), need]);
  return {
    missingRequired: denied.filter((need) => !isOptional(need)),
    disabledFeatures: [...disabled].map(([feature, needs]) => ({ feature, denied: needs })),
  };
}

/**
 * Whether a feature is off in a namespace: denied there or cluster-wide. A feature denied for
 * any of its verbs is off as a whole (Events created but never patched would 403 on every repeat).
 */
export function featureOff(verdict: AccessVerdict, feature: Feature): (namespace: string) => boolean {
  const denied = verdict.disabledFeatures.find((d) => d.feature === feature)?.denied ?? [];
  const namespaces = new Set(denied.map((n) => n.namespace));
  return (namespace) => namespaces.has('') || namespaces.has(namespace);
}

const SSAR_PATH = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

interface AccessReview {
  status?: { allowed?: boolean };
}

/**
 * Asks the API server about each need: one SelfSubjectAccessReview each, all at once (KubeApi's
 * rate limiter paces them). Exact for every authorizer, unlike SelfSubjectRulesReview, which may
 * be incomplete (webhook authorizers) and would need RBAC's matching rules re-implemented here.
 * Rejects when any review cannot be answered: the caller must then not judge on half the answers.
 */
export async function reviewAccess(api: KubeApi, needs: readonly Need[], timeoutMs = 10_000): Promise<boolean[]> {
  return Promise.all(
    needs.map(async ({ verb, group, resource, namespace }) => {
      const body = {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}) } },
      };
      const review = await api.json<AccessReview>('POST', SSAR_PATH, { body, timeoutMs });
      return review.status?.allowed === true;
    }),
  );
}

/** The warning for an optional feature turned off by a denial. */
export function explainDisabled(need: Need): string {
  return `${explainDenial(need)}; hrto runs without ${need.feature} ${need.namespace ? `in namespace ${need.namespace}` : 'in every namespace'}`;
}
