// Flux's own source-controller and helm-controller (and, when asked, notification-controller), built
// from the Go module proxy at the pinned versions and run against a cluster, with a small Helm chart
// served from a repository on loopback. Used by the end-to-end tests and the demo: hrto is proven
// against the real helm-controller.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { deployBinaries, ensureBinaries, ensureBinary, fluxBinaries, moduleSource } from './binaries.js';
import { installCrds } from './cluster.js';
import { freePort, ProcessGroup } from './processes.js';

const run = promisify(execFile);

export const DEMO_CHART = 'hrto-demo';
export const DEMO_CHART_VERSION = '0.1.0';

/**
 * The chart's values schema: `message` a string, `replicas` an integer >= 0 (other keys are free).
 * Helm validates the merged values against it before it renders or stores anything, so values
 * breaking it (DEMO_INVALID_VALUES) fail an install or upgrade at once, every time, with no history
 * entry: the deterministic failure of the end-to-end tests.
 */
export const DEMO_VALUES_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: {
    message: { type: 'string' },
    replicas: { type: 'integer', minimum: 0 },
  },
} as const;

/**
 * A values.yaml the schema rejects (`replicas` below its minimum).
 *
 * How helm-controller v1.6 ends an upgrade to values the schema rejects (measured): within about
 * 0.3 s of the trigger, no history entry, `Released`/`Ready` False/UpgradeFailed, `failures` 1,
 * `lastHandledReconcileAt` set, never Stalled, and `Reconciling` left True. What follows depends on
 * the strategy only (`spec.upgrade.remediation` and `spec.timeout` change nothing: nothing is stored
 * to remediate or wait for):
 *  - the default (RemediateOnFailure): helm-controller retries with its error backoff (0.75 s
 *    doubling) for as long as the values stay bad, each retry failures + 1 and Ready flipping
 *    Unknown/Progressing then False/UpgradeFailed again; `Reconciling` True/Progressing throughout;
 *  - with `spec.upgrade.strategy: {name: RetryOnFailure, retryInterval: 1h}`: one attempt, then
 *    quiet for an hour, `Reconciling` True/ProgressingWithRetry.
 * Both end at once when changed values upgrade fine (the failures are reset).
 */
export const DEMO_INVALID_VALUES = 'replicas: -1\n';

/** A chart whose only object is a ConfigMap showing `.Values.message`: installable without nodes. */
function writeChart(dir: string): string {
  const chart = path.join(dir, DEMO_CHART);
  mkdirSync(path.join(chart, 'templates'), { recursive: true });
  writeFileSync(path.join(chart, 'Chart.yaml'), `apiVersion: v2\nname: ${DEMO_CHART}\nversion: ${DEMO_CHART_VERSION}\n`);
  writeFileSync(path.join(chart, 'values.yaml'), 'message: default\nreplicas: 1\n');
  writeFileSync(path.join(chart, 'values.schema.json'), `${JSON.stringify(DEMO_VALUES_SCHEMA, null, 2)}\n`);
  writeFileSync(
    path.join(chart, 'templates', 'rendered.yaml'),
    [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-rendered',
      'data:',
      '  message: {{ .Values.message | quote }}',
      '  replicas: {{ .Values.replicas | quote }}',
      '',
    ].join('\n'),
  );
  return chart;
}

export interface DemoReleaseOptions {
  /** A ConfigMap of the namespace read through spec.valuesFrom (key values.yaml). */
  valuesFrom?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  /** Merged over the spec (e.g. `upgrade`, `timeout`, `values`). */
  spec?: Record<string, unknown>;
}

/**
 * A HelmRelease of the demo chart from the namespace's HelmRepository `demo` (FluxControllers.createRepository).
 * Its schedules are an hour long, so every upgrade in a test comes from a trigger.
 */
export function demoHelmRelease(namespace: string, name: string, options: DemoReleaseOptions = {}): Record<string, unknown> {
  return {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: {
      name,
      namespace,
      ...(options.annotations ? { annotations: options.annotations } : {}),
      ...(options.labels ? { labels: options.labels } : {}),
    },
    spec: {
      interval: '1h',
      chart: { spec: { chart: DEMO_CHART, version: DEMO_CHART_VERSION, sourceRef: { kind: 'HelmRepository', name: 'demo' }, interval: '1h' } },
      ...(options.valuesFrom ? { valuesFrom: [{ kind: 'ConfigMap', name: options.valuesFrom }] } : {}),
      ...options.spec,
    },
  };
}

/** An event as notification-controller's generic provider posts it. */
export interface FluxEventBody {
  involvedObject: { kind: string; name: string; namespace: string };
  severity: string;
  message: string;
  reason: string;
  metadata?: Record<string, string>;
  reportingController: string;
}

export interface FluxVersions {
  sourceController: string;
  helmController: string;
  notificationController?: string;
}

export interface FluxOptions {
  /** Also run notification-controller; its event endpoint is then `eventsAddress`. */
  notifications?: boolean;
}

export class FluxControllers {
  private readonly group = new ProcessGroup('hrto-flux');
  private repoServer?: Server;
  /** The Helm repository URL to point a HelmRepository at. */
  repositoryUrl = '';
  /** notification-controller's event endpoint (--events-addr of Flux's controllers), when it runs. */
  eventsAddress = '';

  constructor(
    private readonly kubeconfigPath: string,
    private readonly kc: KubeConfig,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  async start(options: FluxOptions = {}): Promise<FluxVersions> {
    try {
      const controllers = [fluxBinaries.sourceController, fluxBinaries.helmController, ...(options.notifications ? [fluxBinaries.notificationController] : [])];
      // One go build for the Flux controllers (one tools module), the helm CLI beside it.
      const [[source, helmController, notification], helm] = await Promise.all([
        ensureBinaries(controllers, this.log),
        ensureBinary(deployBinaries.helm, this.log),
      ]);
      const crds: string[] = [];
      for (const bin of controllers) {
        const module = await moduleSource(bin.module);
        const crdDir = path.join(module.dir, 'config', 'crd', 'bases');
        // helm-controller's HelmRelease CRD is installed by the test run already.
        if (bin !== fluxBinaries.helmController) crds.push(...readdirSync(crdDir).map((f) => path.join(crdDir, f)));
      }
      await installCrds(this.kc, crds);
      await this.ensureNamespace('flux-system');
      await this.serveRepository(helm.path);
      mkdirSync(path.join(this.group.dir, 'storage'));

      const env = { ...process.env, KUBECONFIG: this.kubeconfigPath, RUNTIME_NAMESPACE: 'flux-system' };
      const common = ['--watch-all-namespaces=true', '--enable-leader-election=false', '--log-encoding=json', '--log-level=info'];
      const storagePort = await freePort();
      const health: [string, number][] = [];
      const spawn = async (name: string, binary: string, args: string[]): Promise<void> => {
        const port = await freePort();
        health.push([name, port]);
        this.group.spawn(name, binary, [...common, ...args, `--metrics-addr=127.0.0.1:${await freePort()}`, `--health-addr=127.0.0.1:${port}`], env);
      };
      await spawn('source-controller', source!.path, [
        `--storage-path=${path.join(this.group.dir, 'storage')}`,
        `--storage-addr=127.0.0.1:${storagePort}`,
        `--storage-adv-addr=127.0.0.1:${storagePort}`,
      ]);
      const eventsPort = notification ? await freePort() : 0;
      if (notification) this.eventsAddress = `http://127.0.0.1:${eventsPort}/`;
      // helm-controller posts its own events there too, as in a Flux install: an Alert gets both.
      await spawn('helm-controller', helmController!.path, this.eventsAddress ? [`--events-addr=${this.eventsAddress}`] : []);
      if (notification) {
        await spawn('notification-controller', notification.path, [`--events-addr=127.0.0.1:${eventsPort}`, `--receiverAddr=127.0.0.1:${await freePort()}`]);
      }
      for (const [name, port] of health) {
        await this.group.waitFor(name, async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
      }
      return { sourceController: source!.version, helmController: helmController!.version, ...(notification ? { notificationController: notification.version } : {}) };
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** The HelmRepository `demo` in a namespace, serving the demo chart: what demoHelmRelease points at. */
  async createRepository(namespace: string, name = 'demo'): Promise<void> {
    await this.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'source.toolkit.fluxcd.io',
      version: 'v1',
      plural: 'helmrepositories',
      namespace,
      body: { apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'HelmRepository', metadata: { name, namespace }, spec: { url: this.repositoryUrl, interval: '10m' } },
    });
  }

  /** A Provider of type generic posting to `address`, and an Alert on every HelmRelease of the namespace. */
  async alertTo(namespace: string, address: string): Promise<void> {
    const custom = this.kc.makeApiClient(CustomObjectsApi);
    const group = { group: 'notification.toolkit.fluxcd.io', version: 'v1beta3', namespace };
    const apiVersion = 'notification.toolkit.fluxcd.io/v1beta3';
    await custom.createNamespacedCustomObject({
      ...group,
      plural: 'providers',
      body: { apiVersion, kind: 'Provider', metadata: { name: 'webhook', namespace }, spec: { type: 'generic', address } },
    });
    await custom.createNamespacedCustomObject({
      ...group,
      plural: 'alerts',
      body: {
        apiVersion,
        kind: 'Alert',
        metadata: { name: 'releases', namespace },
        spec: { providerRef: { name: 'webhook' }, eventSeverity: 'info', eventSources: [{ kind: 'HelmRelease', name: '*' }] },
      },
    });
  }

  private async ensureNamespace(name: string): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name } } }).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
  }

  /** Packages the demo chart with helm and serves it with an index, as any Helm repository does. */
  private async serveRepository(helm: string): Promise<void> {
    const repo = path.join(this.group.dir, 'repo');
    mkdirSync(repo, { recursive: true });
    const home = path.join(this.group.dir, 'helm-home');
    const env = { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home };
    await run(helm, ['package', writeChart(this.group.dir), '--destination', repo], { env });
    const server = createServer((req, res) => {
      const file = path.join(repo, path.basename(req.url?.split('?')[0] ?? ''));
      try {
        res.writeHead(200).end(readFileSync(file));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.repoServer = server;
    const address = server.address();
    this.repositoryUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    await run(helm, ['repo', 'index', repo, '--url', this.repositoryUrl], { env });
  }

  logOf(name: 'source-controller' | 'helm-controller' | 'notification-controller'): string {
    return this.group.logOf(name);
  }

  async stop(): Promise<void> {
    this.repoServer?.close();
    await this.group.stop();
  }
}
