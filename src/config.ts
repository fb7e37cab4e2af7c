// Configuration: the seed's environment variables and command-line flags (flags win), validated
// by one schema so every bad value is reported with its name.
import { z } from 'zod';
import { parseGoDuration } from './duration.js';
import { DEFAULT_KEY_DOMAIN } from './keys.js';
import { isNamespaceName, isObjectName } from './mapping/targets.js';

const duration = (name: string) =>
  z.string().transform((value, ctx) => {
    try {
      const ms = parseGoDuration(value);
      if (ms <= 0) throw new RangeError(`${name} must be positive, got "${value}"`);
      return ms;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const positiveInt = z.coerce.number().int().min(1);

// Go-style boolean flags: --flag, --flag=true, --flag=false.
const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);

export const ConfigSchema = z.object({
  kubeconfig: z.string().min(1).optional(),
  keyDomain: z.string().refine(isObjectName, 'must be a DNS subdomain such as uburro.github.com'),
  defaultNamespace: z.string().refine(isNamespaceName, 'must be a valid namespace name'),
  triggerMode: z.enum(['force', 'reconcile']),
  maxConcurrency: positiveInt.max(1000),
  cacheSyncTimeoutMs: duration('cache-sync-timeout'),
  resyncPeriodMs: duration('resync-period'),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']),
  metricsBindAddress: z.string(),
  /** Empty: every namespace. Applies to sources and HelmReleases alike. */
  watchNamespaces: z.array(z.string().refine(isNamespaceName, 'must be valid namespace names')),
  /** Mark and trigger the sources HelmReleases read through spec.valuesFrom. */
  autodiscovery: bool,
  /** Leave valuesFrom consumers of reconcile.fluxcd.io/watch=Enabled sources to helm-controller. */
  deferToFluxWatch: bool,
});

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
  deferToFluxWatch?: string | boolean | undefined;
}

export const DEFAULTS = {
  keyDomain: DEFAULT_KEY_DOMAIN,
  defaultNamespace: 'flux-system',
  triggerMode: 'force',
  maxConcurrency: '10',
  cacheSyncTimeout: '2m',
  resyncPeriod: '10m',
  logLevel: 'info',
  metricsBindAddress: ':8080',
  watchNamespaces: '',
  enableHrAutodiscovery: 'true',
  deferToFluxWatch: 'true',
} as const;

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

const FLAG_NAMES: Record<string, string> = {
  keyDomain: '--key-domain',
  defaultNamespace: '--default-namespace',
  triggerMode: '--trigger-mode',
  maxConcurrency: '--max-concurrency / MAX_CONCURRENCY',
  cacheSyncTimeoutMs: '--cache-sync-timeout / CACHE_SYNC_TIMEOUT',
  resyncPeriodMs: '--resync-period',
  logLevel: '--log-level / LOG_LEVEL',
  metricsBindAddress: '--metrics-bind-address',
  kubeconfig: '--kubeconfig',
  watchNamespaces: '--watch-namespaces',
  autodiscovery: '--enable-hr-autodiscovery',
  deferToFluxWatch: '--defer-to-flux-watch',
};

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
