#!/usr/bin/env node
// Command-line entry: flags and environment -> Config -> controller (or `explain`); signals ->
// graceful stop; lost leadership -> exit 1 so the pod restarts, as controller-runtime managers do.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { type Config, ConfigError, resolveConfig, settingsFromEnv, type RawSettings } from './config.js';
import { CacheSyncTimeoutError, startController } from './controller.js';
import { type ExplainReport, formatReport, formatSteps, runExplain } from './explain.js';
import { type Flag, FLAGS, flagHelp } from './flags.js';
import { suggest } from './suggest.js';
import { VERSION } from './version.js';
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

type ExplainFlags = RawSettings & { namespace?: string; allNamespaces?: boolean; output?: string; context?: string };

async function explainCommand(name: string | undefined, flags: ExplainFlags): Promise<number> {
  if (flags.namespace !== undefined && flags.allNamespaces) {
    process.stderr.write('hrto explain: -n/--namespace and -A/--all-namespaces exclude each other\n');
    return 2;
  }
  const config = configure(flags);
  if (typeof config === 'number') return config;
  // Logs go to stderr, warnings only: stdout is the report.
  const log = createLogger('warn', process.stderr);
  try {
    const api = await connect(config.kubeconfig, { qps: config.kubeApiQps, burst: config.kubeApiBurst }, process.env, flags.context);
    const report = await runExplain(config, api, log, { namespace: flags.namespace, name }).finally(() => api.close());
    process.stdout.write(await render(report, flags.output ?? 'table'));
    return 0;
  } catch (err) {
    process.stderr.write(`hrto explain: ${(err as Error).message}\n`);
    return 1;
  }
}

/** The report in the asked format; the YAML writer is loaded only when asked for. */
async function render(report: ExplainReport, output: string): Promise<string> {
  switch (output) {
    case 'json':
      return `${JSON.stringify(report, null, 2)}\n`;
    case 'yaml': {
      const { stringify } = await import('yaml');
      return stringify(report);
    }
    case 'steps':
      return formatSteps(report);
    default:
      return formatReport(report);
  }
}

/** The flags of the table (flags.ts) for a scope, each with its help, allowed values and default said one way. */
function withFlags(cmd: Command, scope: Flag['scope']): Command {
  for (const f of FLAGS) {
    if (f.scope !== scope) continue;
    // The allowed values are in the help and in the configuration's own error message.
    cmd.addOption(new Option(`${f.flag} ${f.value}`, flagHelp(f)));
  }
  return cmd;
}

/** What --version and `hrto version` print. */
const VERSION_LINE = `hrto ${VERSION}`;

const EXPLAIN_EXAMPLES = `
Examples:
  # Every HelmRelease of the cluster, the sources feeding it, and what is pending and why
  hrto explain -A

  # One release, in the context of another cluster
  hrto explain podinfo -n apps --context prod-eu-1

  # A planned source's rollout, ring by ring and cluster by cluster
  hrto explain -n clusters -o steps

  # In the cluster, from hrto's own pod (the image carries the command)
  kubectl -n helmrelease-trigger-operator-system exec deploy/helmrelease-trigger-operator -- node dist/hrto.mjs explain -A
`;

export function buildCli(): Command {
  const program = withFlags(
    withFlags(
      // Positional: `hrto explain --kubeconfig x` gives --kubeconfig to explain, not to the controller.
      new Command('hrto')
        .enablePositionalOptions()
        .description(
          'helmrelease-trigger-operator: triggers Flux HelmReleases when the labeled ConfigMaps and Secrets they consume change.\n' +
            'Run without a command, it is the controller. Environment: MAX_CONCURRENCY, CACHE_SYNC_TIMEOUT, LOG_LEVEL, KUBECONFIG (flags win).',
        )
        .version(VERSION_LINE, '--version', 'print the version')
        // A word that is no command is reported below, with the command it may have meant.
        .allowExcessArguments(true),
      'all',
    ),
    'run',
  ).action(async (opts: RawSettings, cmd: Command) => {
    const [typed] = cmd.args;
    if (typed !== undefined) {
      const meant = suggest(typed, program.commands.map((c) => c.name()));
      process.stderr.write(`hrto: unknown command "${typed}"${meant ? ` (did you mean "${meant}"?)` : ''}; see hrto --help\n`);
      process.exitCode = 1;
      return;
    }
    process.exitCode = await run(opts);
  });
  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`${VERSION_LINE}\n`);
    });
  const explain = program
    .command('explain [helmrelease]')
    .description('which sources feed which HelmReleases, their digests, and whether a trigger is pending and why')
    .option('-n, --namespace <namespace>', 'only HelmReleases of this namespace (default: every namespace)')
    .option('-A, --all-namespaces', 'every namespace (the default; for kubectl\'s habit)')
    .addOption(new Option('-o, --output <format>', 'output format; steps: each rollout plan by step and cluster (default: table)').choices(['table', 'json', 'yaml', 'steps']))
    .option('--context <name>', 'the kubeconfig context to use (default: its current context)');
  withFlags(explain, 'all')
    .addHelpText('after', EXPLAIN_EXAMPLES)
    .action(async (name: string | undefined, opts: ExplainFlags) => {
      process.exitCode = await explainCommand(name, opts);
    });
  return program;
}

await buildCli().parseAsync(process.argv);
// Exit even if a stray handle (a half-closed socket) would keep the event loop alive.
process.exit(process.exitCode ?? 0);
