#!/usr/bin/env node
// Command-line entry: flags and environment -> Config -> controller (or `explain`); signals ->
// graceful stop; lost leadership -> exit 1 so the pod restarts, as controller-runtime managers do.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { type Config, ConfigError, DEFAULTS, resolveConfig, settingsFromEnv, type RawSettings } from './config.js';
import { CacheSyncTimeoutError, startController } from './controller.js';
import { formatReport, formatSteps, runExplain } from './explain.js';
import type { KubeApi } from './kube/api.js';
import { readinessChecks, serveMetrics, serveProbes } from './http-server.js';
import { type AccessVerdict, denial, type Need, explainDenial, explainDisabled, featureOff, judgeAccess, requiredAccess, resourceName, reviewAccess } from './kube/access.js';
import { kubeWriter, type KubeWriter, withoutEvents } from './kube/client.js';
import { connect } from './kube/connect.js';
import { runsInCluster, serviceAccountDir } from './kube/credentials.js';
import { createLogger, type Logger, stdoutLogger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';

/** In a pod (and not pointed elsewhere): leader election on, the lease in the pod's namespace. */
function inClusterDefaults(flags: RawSettings): RawSettings {
  if (!runsInCluster(flags.kubeconfig)) return {};
  const file = path.join(serviceAccountDir(), 'namespace');
  const namespace = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  return { leaderElect: 'true', leaderElectionNamespace: namespace };
}

/** commander reads --no-cross-namespace-refs as the negation of crossNamespaceRefs. */
function normalize(opts: RawSettings & { crossNamespaceRefs?: boolean | string }): RawSettings {
  const { crossNamespaceRefs, ...rest } = opts;
  const noCross = typeof crossNamespaceRefs === 'string' ? crossNamespaceRefs : crossNamespaceRefs === false ? 'true' : undefined;
  return { ...rest, noCrossNamespaceRefs: noCross };
}

function configure(flags: RawSettings): Config | number {
  try {
    return resolveConfig(inClusterDefaults(flags), settingsFromEnv(process.env), normalize(flags));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hrto: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/**
 * Asks the API server for every permission the flags need, before any informer starts. undefined:
 * a required one is missing (each logged), and hrto must not start. A review that cannot be made
 * (no SelfSubjectAccessReview API, itself refused, unreachable) only warns: the check is a courtesy,
 * and never what keeps hrto from starting.
 */
async function checkAccess(api: KubeApi, config: Config, log: Logger, metrics: Metrics): Promise<AccessVerdict | undefined> {
  const needs = requiredAccess(config);
  let allowed: boolean[];
  try {
    allowed = await reviewAccess(api, needs);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot check permissions at start (SelfSubjectAccessReview); starting without the check');
    return { missingRequired: [], disabledFeatures: [] };
  }
  const verdict = judgeAccess(needs, allowed);
  const fields = ({ verb, group, resource, namespace, feature }: Need) => ({ verb, group, resource, namespace: namespace || '*', feature });
  for (const need of verdict.missingRequired) log.error(fields(need), explainDenial(need));
  if (verdict.missingRequired.length > 0) {
    log.error({ missing: verdict.missingRequired.length, checked: needs.length }, 'not starting: hrto lacks permissions its flags need (see the lines above)');
    return undefined;
  }
  for (const { denied } of verdict.disabledFeatures) {
    for (const need of denied) {
      log.warn(fields(need), explainDisabled(need));
      metrics.missingPermissions.set({ verb: need.verb, resource: resourceName(need), namespace: need.namespace || '*', feature: need.feature }, 1);
    }
  }
  log.info({ checked: needs.length }, 'permissions checked (SelfSubjectAccessReview)');
  return verdict;
}

/** hrto's writes, less the optional features the access check turned off; undefined: all of them. */
function writerFor(api: KubeApi, verdict: AccessVerdict): KubeWriter | undefined {
  if (!verdict.disabledFeatures.some((d) => d.feature === 'events')) return undefined;
  return withoutEvents(kubeWriter(api), featureOff(verdict, 'events'));
}

async function run(flags: RawSettings): Promise<number> {
  const config = configure(flags);
  if (typeof config === 'number') return config;
  const log = await stdoutLogger(config.logLevel);
  const metrics = createMetrics({ processMetrics: true });
  let api: KubeApi;
  try {
    api = await connect(config.kubeconfig, { qps: config.kubeApiQps, burst: config.kubeApiBurst, observer: metrics.api });
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot connect to the API server');
    return 1;
  }
  log.info(
    { server: api.server, keyDomain: config.keyDomain, triggerMode: config.triggerMode, leaderElect: config.leaderElect, dryRun: config.dryRun },
    'starting hrto',
  );
  // Before any informer: a missing permission is one line now, not a 403 loop later.
  const verdict = await checkAccess(api, config, log, metrics);
  if (!verdict) {
    api.close();
    return 1;
  }
  const disabled = verdict.disabledFeatures.map(({ feature, denied }) => ({ feature, reasons: denied.map(denial) }));
  return new Promise<number>((resolve) => {
    const servers = Promise.all([
      serveMetrics(metrics.registry, config.metricsBindAddress),
      serveProbes(config.healthProbeBindAddress, () => readinessChecks(controller.ready(), disabled)),
    ]);
    const finish = async (code: number): Promise<void> => {
      await controller.stop();
      api.close();
      for (const server of await servers) server?.close();
      resolve(code);
    };
    const controller = startController(config, {
      api,
      log,
      metrics,
      writer: writerFor(api, verdict),
      onLostLeadership: () => void finish(1),
    });
    servers.catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'cannot serve metrics or probes');
      void finish(1);
    });
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        log.info({ signal }, 'stopping: finishing in-flight work');
        void finish(0);
      });
    }
    controller.started.catch((err: unknown) => {
      if (!(err instanceof CacheSyncTimeoutError)) log.error({ err }, 'startup failed');
      else log.error(err.message);
      void finish(1);
    });
  });
}

async function explainCommand(name: string | undefined, flags: RawSettings & { namespace?: string; output: string }): Promise<number> {
  const config = configure(flags);
  if (typeof config === 'number') return config;
  // Logs go to stderr, warnings only: stdout is the report.
  const log = createLogger('warn', process.stderr);
  try {
    const api = await connect(config.kubeconfig, { qps: config.kubeApiQps, burst: config.kubeApiBurst });
    const report = await runExplain(config, api, log, { namespace: flags.namespace, name }).finally(() => api.close());
    process.stdout.write(flags.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : flags.output === 'steps' ? formatSteps(report) : formatReport(report));
    return 0;
  } catch (err) {
    process.stderr.write(`hrto explain: ${(err as Error).message}\n`);
    return 1;
  }
}

/** The flags every command reads: what to watch and how keys are named. */
function withSelection(cmd: Command): Command {
  return cmd
    .option('--kubeconfig <path>', 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--key-domain <domain>', 'domain of every label and annotation key', DEFAULTS.keyDomain)
    .option('--default-namespace <namespace>', 'namespace of target HelmReleases when a source names none', DEFAULTS.defaultNamespace)
    .option('--cache-sync-timeout <duration>', `startup cache sync limit, Go syntax [env CACHE_SYNC_TIMEOUT] (default: ${DEFAULTS.cacheSyncTimeout})`)
    .option('--watch-namespaces <list>', 'comma-separated namespaces of sources and HelmReleases to watch (default: all)')
    .option('--watch-label-selector <selector>', "label selector on sources, ANDed with the watch label; Flux's sharding: sharding.fluxcd.io/key=shard1")
    .option('--helmrelease-label-selector <selector>', 'only HelmReleases matching it are triggered or marked for')
    .option('--enable-hr-autodiscovery [bool]', 'label and trigger the sources HelmReleases read through spec.valuesFrom', DEFAULTS.enableHrAutodiscovery)
    .option('--watch-secrets [bool]', 'watch, read and patch labeled Secrets; false: ConfigMaps only, and no access to Secrets is needed', DEFAULTS.watchSecrets)
    .option(
      '--defer-to-flux-watch [bool]',
      'leave sources labeled reconcile.fluxcd.io/watch=Enabled to helm-controller for the HelmReleases of their namespace that read them',
      DEFAULTS.deferToFluxWatch,
    )
    .option('--no-cross-namespace-refs [bool]', 'refuse sources that target HelmReleases in another namespace (default: false)')
    .option('--kube-api-qps <n>', "client-side limit of requests per second to the API server, all kinds together (Flux's default); 0: unlimited", DEFAULTS.kubeApiQps)
    .option('--kube-api-burst <n>', 'requests that may go at once above --kube-api-qps after a quiet spell', DEFAULTS.kubeApiBurst)
    .option(
      '--trigger-windows <json>',
      'when changes may reach HelmReleases without their own trigger-windows annotation, e.g. \'[{"cron": "0 8 * * 1-5", "timeZone": "Europe/Berlin", "window": "8h"}]\' (default: always)',
    )
    .option('--wave-timeout <duration>', 'a triggered HelmRelease of a wave not healthy this long after its trigger has failed, and halts the rollout', DEFAULTS.waveTimeout);
}

export function buildCli(): Command {
  const program = withSelection(
    // Positional: `hrto explain --kubeconfig x` gives --kubeconfig to explain, not to the controller.
    new Command('hrto').enablePositionalOptions().description(
      'helmrelease-trigger-operator: triggers Flux HelmReleases when the labeled ConfigMaps and Secrets they consume change.\n' +
        'Environment: MAX_CONCURRENCY, CACHE_SYNC_TIMEOUT, LOG_LEVEL, KUBECONFIG (flags win).',
    ),
  )
    .addOption(new Option('--trigger-mode <mode>', 'force: requestedAt + forceAt; reconcile: requestedAt only').choices(['force', 'reconcile']).default(DEFAULTS.triggerMode))
    .option('--max-concurrency <n>', `concurrent reconciles [env MAX_CONCURRENCY] (default: ${DEFAULTS.maxConcurrency})`)
    .option('--resync-period <duration>', 'how often every watched source is reconciled again', DEFAULTS.resyncPeriod)
    .option('--log-level <level>', `debug, info, warn or error [env LOG_LEVEL] (default: ${DEFAULTS.logLevel})`)
    .option('--debounce <duration>', 'changes for one HelmRelease within this window become one trigger', DEFAULTS.debounce)
    .option('--max-triggers-per-second <n>', 'global throttle across all HelmReleases (a token bucket); waiting triggers are never dropped; 0: unlimited', DEFAULTS.maxTriggersPerSecond)
    .option('--reset-stalled [bool]', 'when a HelmRelease is Stalled (retries exhausted), also set reconcile.fluxcd.io/resetAt', DEFAULTS.resetStalled)
    .option('--min-trigger-interval <duration>', 'a HelmRelease is triggered at most once per interval; later changes wait, never dropped', DEFAULTS.minTriggerInterval)
    .option('--dry-run [bool]', 'log and emit Events for what would be triggered; patch nothing', DEFAULTS.dryRun)
    .option('--metrics-bind-address <address>', 'address of the /metrics endpoint, 0 to disable', DEFAULTS.metricsBindAddress)
    .option('--health-probe-bind-address <address>', 'address of /healthz and /readyz, 0 to disable', DEFAULTS.healthProbeBindAddress)
    .option('--leader-elect [bool]', 'leader election on a Lease, so only one replica writes (default: true in a cluster, false outside)')
    .option('--leader-election-namespace <namespace>', "namespace of the Lease (default: the pod's, else " + DEFAULTS.leaderElectionNamespace + ')')
    .option('--leader-election-id <name>', 'name of the Lease', DEFAULTS.leaderElectionId)
    .option('--leader-elect-lease-duration <duration>', 'how long a standby waits before taking over an unrenewed lease', DEFAULTS.leaderElectLeaseDuration)
    .option('--leader-elect-renew-deadline <duration>', 'how long the leader retries renewing before it stops leading', DEFAULTS.leaderElectRenewDeadline)
    .option('--leader-elect-retry-period <duration>', 'how often candidates try to acquire or renew', DEFAULTS.leaderElectRetryPeriod)
    .option('--max-upgrades-in-flight <n>', 'no more HelmReleases are triggered while this many triggered ones have not finished upgrading; 0: unlimited', DEFAULTS.maxUpgradesInFlight)
    .option('--events-addr <url>', "also post every Event to Flux's notification-controller, e.g. http://notification-controller.flux-system.svc.cluster.local./ (default: off)")
    .option('--graceful-shutdown-timeout <duration>', 'on SIGTERM, how long in-flight work may take', DEFAULTS.gracefulShutdownTimeout)
    .action(async (opts: RawSettings) => {
      process.exitCode = await run(opts);
    });
  withSelection(program.command('explain [helmrelease]').description('which sources feed which HelmReleases, their digests, and whether a trigger is pending and why'))
    .option('-n, --namespace <namespace>', 'only HelmReleases of this namespace')
    .addOption(new Option('-o, --output <format>', 'output format (steps: each rollout plan by step and cluster)').choices(['table', 'json', 'steps']).default('table'))
    .action(async (name: string | undefined, opts: RawSettings & { namespace?: string; output: string }) => {
      process.exitCode = await explainCommand(name, opts);
    });
  return program;
}

await buildCli().parseAsync(process.argv);
// Exit even if a stray handle (a half-closed socket) would keep the event loop alive.
process.exit(process.exitCode ?? 0);
