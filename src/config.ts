// Configuration: the seed's environment variables and command-line flags (flags win), validated
// by one schema so every bad value is reported with its name.
import * as z from 'zod/mini';
import { parseGoDuration } from './duration.js';
import { isNamespaceName, isObjectName } from './mapping/targets.js';
import { parseWindows } from './rollout/window.js';
import { parseSelector } from './selector.js';
import { en } from 'zod/locales';
import { FLAGS, LOG_LEVELS, TRIGGER_MODES } from './flags.js';

// zod/mini (a tenth of zod's code and ~5 MiB less RSS) ships without messages: English ones for
// the issues no custom message covers, such as an unknown --trigger-mode.
z.config(en());

/** A string parsed by `parse`; what it throws becomes the schema issue. */
const parsed = <T>(parse: (value: string) => T) =>
  z.pipe(
    z.string(),
    z.transform((value: string, ctx) => {
      try {
        return parse(value);
      } catch (err) {
        ctx.issues.push({ code: 'custom', message: (err as Error).message, input: value });
        return z.NEVER;
      }
    }),
  );

const goDuration = (allowZero: boolean) =>
  parsed((value) => {
    const ms = parseGoDuration(value);
    if (ms < 0 || (ms === 0 && !allowZero)) throw new RangeError(`must be ${allowZero ? 'zero or more' : 'positive'}, got "${value}"`);
    return ms;
  });
const duration = goDuration(false);
const nonNegativeDuration = goDuration(true);
const selector = parsed((value) => parseSelector(value).text);

const int = (min: number, max: number) => z.pipe(z.coerce.number(), z.int().check(z.minimum(min), z.maximum(max)));
const number = (min: number, max: number) => z.coerce.number().check(z.minimum(min), z.maximum(max));
const name = (valid: (value: string) => boolean, message: string) => z.string().check(z.refine(valid, message));

// Go-style boolean flags: --flag, --flag=true, --flag=false.
const bool = z.pipe(
  z.union([z.boolean(), z.string()]),
  z.transform((v: boolean | string, ctx) => {
    if (typeof v === 'boolean' || v === 'true' || v === 'false') return v === true || v === 'true';
    ctx.issues.push({ code: 'custom', message: `must be true or false, got "${v.slice(0, 64)}"`, input: v });
    return z.NEVER;
  }),
);

/** One of a few words; the message lists them. */
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (issue) => `must be one of ${values.join(', ')}; got ${JSON.stringify(issue.input)}` });

export const ConfigSchema = z
  .object({
    kubeconfig: z.optional(z.string().check(z.minLength(1))),
    keyDomain: name(isObjectName, 'must be a DNS subdomain such as uburro.github.com'),
    defaultNamespace: name(isNamespaceName, 'must be a valid namespace name'),
    triggerMode: oneOf(TRIGGER_MODES),
    maxConcurrency: int(1, 1000),
    cacheSyncTimeoutMs: duration,
    resyncPeriodMs: duration,
    logLevel: oneOf(LOG_LEVELS),
    metricsBindAddress: z.string(),
    /** Empty: every namespace. Applies to sources and HelmReleases alike. */
    watchNamespaces: z.array(name(isNamespaceName, 'must be valid namespace names')),
    /** Mark and trigger the sources HelmReleases read through spec.valuesFrom. */
    autodiscovery: bool,
    /** false: Secrets are never watched, read or patched (the RBAC then holds no rule on them). */
    watchSecrets: bool,
    /** Leave valuesFrom consumers of reconcile.fluxcd.io/watch=Enabled sources to helm-controller. */
    deferToFluxWatch: bool,
    /** Sources: ANDed with the watch label on the API server (Flux's sharding flag). */
    watchLabelSelector: selector,
    /** HelmReleases not matching are out of scope: never triggered, never marked for. */
    helmreleaseLabelSelector: selector,
    noCrossNamespaceRefs: bool,
    dryRun: bool,
    debounceMs: nonNegativeDuration,
    /** 0: unlimited. */
    maxTriggersPerSecond: number(0, 10_000),
    resetStalled: bool,
    minTriggerIntervalMs: nonNegativeDuration,
    healthProbeBindAddress: z.string(),
    leaderElect: bool,
    leaseDurationMs: duration,
    renewDeadlineMs: duration,
    retryPeriodMs: duration,
    leaderElectionNamespace: name(isNamespaceName, 'must be a valid namespace name'),
    leaderElectionId: name(isObjectName, 'must be a valid object name'),
    gracefulShutdownTimeoutMs: duration,
    /** 0: no client-side limit. */
    kubeApiQps: number(0, 100_000),
    kubeApiBurst: int(1, 100_000),
    /** Flux notification-controller's event endpoint; empty: off. */
    eventsAddr: z.union([z.literal(''), z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })]),
    /** When changes may reach releases without their own trigger-windows annotation; []: always. */
    triggerWindows: parsed((value) => parseWindows(value, '--trigger-windows')),
    /** A triggered release of a wave not healthy this long after its trigger has failed. */
    waveTimeoutMs: duration,
    /** 0: unlimited. */
    maxUpgradesInFlight: int(0, 100_000),
  })
  .check(
    z.refine((c) => c.renewDeadlineMs < c.leaseDurationMs && c.retryPeriodMs < c.renewDeadlineMs, {
      error: 'leader election needs retry period < renew deadline < lease duration',
      path: ['leaseDurationMs'],
    }),
  );

export type Config = z.infer<typeof ConfigSchema>;

/** Raw settings as given: strings from the environment or flags. */
export interface RawSettings {
  kubeconfig?: string | undefined;
  keyDomain?: string | undefined;
  defaultNamespace?: string | undefined;
  triggerMode?: string | undefined;
  maxConcurrency?: string | number | undefined;
  cacheSyncTimeout?: string | undefined;
  resyncPeriod?: string | undefined;
  logLevel?: string | undefined;
  metricsBindAddress?: string | undefined;
  watchNamespaces?: string | undefined;
  enableHrAutodiscovery?: string | boolean | undefined;
  watchSecrets?: string | boolean | undefined;
  deferToFluxWatch?: string | boolean | undefined;
  watchLabelSelector?: string | undefined;
  helmreleaseLabelSelector?: string | undefined;
  noCrossNamespaceRefs?: string | boolean | undefined;
  dryRun?: string | boolean | undefined;
  debounce?: string | undefined;
  maxTriggersPerSecond?: string | number | undefined;
  resetStalled?: string | boolean | undefined;
  minTriggerInterval?: string | undefined;
  healthProbeBindAddress?: string | undefined;
  leaderElect?: string | boolean | undefined;
  leaderElectLeaseDuration?: string | undefined;
  leaderElectRenewDeadline?: string | undefined;
  leaderElectRetryPeriod?: string | undefined;
  leaderElectionNamespace?: string | undefined;
  leaderElectionId?: string | undefined;
  gracefulShutdownTimeout?: string | undefined;
  kubeApiQps?: string | number | undefined;
  kubeApiBurst?: string | number | undefined;
  eventsAddr?: string | undefined;
  triggerWindows?: string | undefined;
  waveTimeout?: string | undefined;
  maxUpgradesInFlight?: string | number | undefined;
}

/** Every default, from the flag table (flags.ts). */
export const DEFAULTS: Readonly<Record<string, string>> = Object.fromEntries(FLAGS.flatMap((f) => (f.default === undefined ? [] : [[f.key, f.default]])));

/** The seed's environment variables; KUBECONFIG is read by the Kubernetes client itself. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): RawSettings {
  return {
    maxConcurrency: env.MAX_CONCURRENCY,
    cacheSyncTimeout: env.CACHE_SYNC_TIMEOUT,
    logLevel: env.LOG_LEVEL?.toLowerCase(),
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** How an error names a validated field: its flag, and its environment variable when it has one. */
const FLAG_NAMES: Readonly<Record<string, string>> = Object.fromEntries(FLAGS.map((f) => [f.field ?? f.key, `${f.flag}${f.env ? ` / ${f.env}` : ''}`]));

/** Merges layers (later wins over earlier, undefined never wins) and validates. */
export function resolveConfig(...layers: RawSettings[]): Config {
  const merged: Record<string, unknown> = { ...DEFAULTS };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined && v !== '') merged[k] = v;
  }
  const rawNamespaces = typeof merged.watchNamespaces === 'string' ? merged.watchNamespaces : '';
  const namespaces = rawNamespaces
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const result = ConfigSchema.safeParse({
    ...merged,
    cacheSyncTimeoutMs: merged.cacheSyncTimeout,
    resyncPeriodMs: merged.resyncPeriod,
    watchNamespaces: [...new Set(namespaces)],
    autodiscovery: merged.enableHrAutodiscovery,
    debounceMs: merged.debounce,
    minTriggerIntervalMs: merged.minTriggerInterval,
    leaseDurationMs: merged.leaderElectLeaseDuration,
    renewDeadlineMs: merged.leaderElectRenewDeadline,
    retryPeriodMs: merged.leaderElectRetryPeriod,
    gracefulShutdownTimeoutMs: merged.gracefulShutdownTimeout,
    waveTimeoutMs: merged.waveTimeout,
  });
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const field = String(issue.path[0] ?? '');
      return `${FLAG_NAMES[field] ?? field}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return result.data;
}
