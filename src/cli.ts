#!/usr/bin/env node
// Command-line entry: flags and environment -> Config -> controller; signals -> graceful stop.
import { Command, Option } from 'commander';
import { ConfigError, DEFAULTS, resolveConfig, settingsFromEnv, type RawSettings } from './config.js';
import { CacheSyncTimeoutError, startController } from './controller.js';
import { loadKubeConfig } from './kube/config.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { serveMetrics } from './metrics-server.js';

async function run(flags: RawSettings): Promise<number> {
  let config;
  try {
    config = resolveConfig(settingsFromEnv(process.env), flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hrto: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const metrics = createMetrics({ processMetrics: true });
  const kc = loadKubeConfig(config.kubeconfig);
  log.info({ server: kc.getCurrentCluster()?.server, keyDomain: config.keyDomain, triggerMode: config.triggerMode }, 'starting hrto');
  const server = await serveMetrics(metrics.registry, config.metricsBindAddress);
  const controller = startController(config, { kc, log, metrics });

  const stop = async (signal: string): Promise<number> => {
    log.info({ signal }, 'stopping: finishing in-flight work');
    await controller.stop();
    server?.close();
    return 0;
  };
  return new Promise<number>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => void stop(signal).then(resolve));
    }
    controller.started.catch(async (err: unknown) => {
      if (!(err instanceof CacheSyncTimeoutError)) log.error({ err }, 'startup failed');
      else log.error(err.message);
      await controller.stop();
      server?.close();
      resolve(1);
    });
  });
}

export function buildCli(): Command {
  const program = new Command('hrto')
    .description(
      'helmrelease-trigger-operator: triggers Flux HelmReleases when the labeled ConfigMaps they consume change.\n' +
        'Environment: MAX_CONCURRENCY, CACHE_SYNC_TIMEOUT, LOG_LEVEL, KUBECONFIG (flags win).',
    )
    .option('--kubeconfig <path>', 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--key-domain <domain>', 'domain of every label and annotation key', DEFAULTS.keyDomain)
    .option('--default-namespace <namespace>', 'namespace of target HelmReleases when a source names none', DEFAULTS.defaultNamespace)
    .addOption(new Option('--trigger-mode <mode>', 'force: requestedAt + forceAt; reconcile: requestedAt only').choices(['force', 'reconcile']).default(DEFAULTS.triggerMode))
    .option('--max-concurrency <n>', `concurrent reconciles [env MAX_CONCURRENCY] (default: ${DEFAULTS.maxConcurrency})`)
    .option('--cache-sync-timeout <duration>', `startup cache sync limit, Go syntax [env CACHE_SYNC_TIMEOUT] (default: ${DEFAULTS.cacheSyncTimeout})`)
    .option('--resync-period <duration>', 'how often every watched source is reconciled again', DEFAULTS.resyncPeriod)
    .option('--log-level <level>', `debug, info, warn or error [env LOG_LEVEL] (default: ${DEFAULTS.logLevel})`)
    .option('--watch-namespaces <list>', 'comma-separated namespaces of sources and HelmReleases to watch (default: all)')
    .option('--enable-hr-autodiscovery [bool]', 'label and trigger the sources HelmReleases read through spec.valuesFrom', DEFAULTS.enableHrAutodiscovery)
    .option(
      '--defer-to-flux-watch [bool]',
      'leave sources labeled reconcile.fluxcd.io/watch=Enabled to helm-controller for the HelmReleases of their namespace that read them',
      DEFAULTS.deferToFluxWatch,
    )
    .option('--metrics-bind-address <address>', 'address of the /metrics endpoint, 0 to disable', DEFAULTS.metricsBindAddress)
    .action(async (opts: RawSettings) => {
      process.exitCode = await run(opts);
    });
  return program;
}

await buildCli().parseAsync(process.argv);
// Exit even if a stray handle (a half-closed socket) would keep the event loop alive.
process.exit(process.exitCode ?? 0);
