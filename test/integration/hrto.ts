// Runs hrto in the test process against the test cluster, scoped to the test's namespaces, with
// its logs captured; and records every trigger a HelmRelease receives through a watch.
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { type RawSettings, resolveConfig } from '../../src/config.js';
import { type Controller, startController } from '../../src/controller.js';
import type { KubeWriter } from '../../src/kube/client.js';
import { createLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { type Cached, Informer } from '../../src/sources/informer.js';
import { KubeApi } from '../../src/kube/api.js';
import { kubeConfigCredentials } from '../../src/kube/credentials.js';
import { api, core, eventually, kc } from './support.js';

/** HRTO_TEST_HRTO_KUBECONFIG: hrto runs as that identity (the install test's ServiceAccount), fixtures as admin. */
const hrtoIdentity = process.env.HRTO_TEST_HRTO_KUBECONFIG
  ? (() => {
      const identity = new KubeConfig();
      identity.loadFromFile(process.env.HRTO_TEST_HRTO_KUBECONFIG);
      return identity;
    })()
  : undefined;

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface Hrto {
  controller: Controller;
  metrics: Metrics;
  logs: LogLine[];
  stop(): Promise<void>;
}

export async function startHrto(
  settings: RawSettings & { watchNamespaces: string },
  options: { wrapWriter?: (writer: KubeWriter) => KubeWriter; kc?: KubeConfig } = {},
): Promise<Hrto> {
  const logs: LogLine[] = [];
  let partial = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line) logs.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  // Tests trigger one release several times in a row; the minimum interval has tests of its own.
  const config = resolveConfig({ metricsBindAddress: '0', healthProbeBindAddress: '0', logLevel: 'debug', minTriggerInterval: '0s', ...settings });
  const log = createLogger(config.logLevel, destination);
  const metrics = createMetrics();
  const { kubeWriter } = await import('../../src/kube/client.js');
  const identity = await KubeApi.create(kubeConfigCredentials(options.kc ?? hrtoIdentity ?? kc), {
    qps: config.kubeApiQps,
    burst: config.kubeApiBurst,
    observer: metrics.api,
  });
  const writer = options.wrapWriter ? options.wrapWriter(kubeWriter(identity)) : undefined;
  const controller = startController(config, { api: identity, log, metrics, ...(writer ? { writer } : {}) });
  const stop = async (): Promise<void> => {
    await controller.stop();
    identity.close();
  };
  await controller.started.catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { controller, metrics, logs, stop };
}

export const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
export const FORCE_AT = 'reconcile.fluxcd.io/forceAt';

/**
 * Every distinct reconcile request the HelmReleases of a namespace receive, in order, seen through
 * a watch (each hrto trigger writes a new timestamp, so distinct values count patches exactly).
 */
export class TriggerLog {
  readonly requests = new Map<string, { requestedAt: string; forceAt: string | undefined }[]>();
  private informer?: Informer<Cached & { name: string; requestedAt?: string; forceAt?: string }>;

  /** Uses hrto's own informer (relists and rewatches on errors) with a silent logger. */
  static async start(namespace: string): Promise<TriggerLog> {
    const log = new TriggerLog();
    const informer = new Informer({
      name: `test-triggers[${namespace}]`,
      api,
      path: `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${namespace}/helmreleases`,
      log: createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })),
      transform: (raw) => {
        const meta = (raw.metadata ?? {}) as { name?: string; resourceVersion?: string; annotations?: Record<string, string> };
        return {
          key: meta.name ?? '',
          name: meta.name ?? '',
          resourceVersion: meta.resourceVersion ?? '',
          requestedAt: meta.annotations?.[REQUESTED_AT],
          forceAt: meta.annotations?.[FORCE_AT],
        };
      },
    });
    const record = (hr: { name: string; requestedAt?: string; forceAt?: string }): void => {
      if (!hr.requestedAt) return;
      const list = log.requests.get(hr.name) ?? [];
      if (list.at(-1)?.requestedAt !== hr.requestedAt) {
        list.push({ requestedAt: hr.requestedAt, forceAt: hr.forceAt });
        log.requests.set(hr.name, list);
      }
    };
    informer.addHandlers({ add: record, update: (_old, hr) => record(hr) });
    informer.start();
    await informer.waitForSync();
    log.informer = informer;
    return log;
  }

  count(name: string): number {
    return this.requests.get(name)?.length ?? 0;
  }

  total(): number {
    let n = 0;
    for (const list of this.requests.values()) n += list.length;
    return n;
  }

  async waitFor(name: string, count: number, timeoutMs = 30_000): Promise<void> {
    await eventually(`${count} trigger(s) of ${name}`, () => Promise.resolve(this.count(name) >= count), timeoutMs);
  }

  async stop(): Promise<void> {
    await this.informer?.shutdown();
  }
}

export interface EventSummary {
  type: string;
  reason: string;
  message: string;
  kind: string;
  name: string;
  count: number;
}

export async function events(namespace: string): Promise<EventSummary[]> {
  const list = await core.listNamespacedEvent({ namespace });
  return list.items.map((e) => ({
    type: e.type ?? '',
    reason: e.reason ?? '',
    message: e.message ?? '',
    kind: e.involvedObject.kind ?? '',
    name: e.involvedObject.name ?? '',
    count: e.count ?? 1,
  }));
}

export async function waitForEvent(
  namespace: string,
  match: Partial<Pick<EventSummary, 'type' | 'reason' | 'kind' | 'name'>>,
  timeoutMs = 30_000,
): Promise<EventSummary> {
  return eventually(`event ${JSON.stringify(match)} in ${namespace}`, async () =>
    (await events(namespace)).find((e) => Object.entries(match).every(([k, v]) => e[k as keyof EventSummary] === v)),
  timeoutMs);
}

export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}
