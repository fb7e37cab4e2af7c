// Shared helpers for integration tests: the cluster from HRTO_TEST_KUBECONFIG, a namespace per
// test, HelmRelease fixtures and polling.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import { contentDigest } from '../../src/digest.js';
import { KubeApi } from '../../src/kube/api.js';
import { kubeConfigCredentials } from '../../src/kube/credentials.js';
import { contentOf } from '../../src/sources/objects.js';

export function kubeConfig(): KubeConfig {
  const path = process.env.HRTO_TEST_KUBECONFIG;
  if (!path) throw new Error('HRTO_TEST_KUBECONFIG is not set: run the tests through test/run.ts (npm test)');
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export const kc = kubeConfig();
export const core = kc.makeApiClient(CoreV1Api);
/** hrto's own client, as the admin: for informers and raw requests in tests. */
export const api = await KubeApi.create(kubeConfigCredentials(kc));
export const custom = kc.makeApiClient(CustomObjectsApi);

export const HR = { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' } as const;

/** A fresh namespace; a bare kube-apiserver never finishes deleting it, so names are unique. */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`.slice(0, 63);
  await core.createNamespace({ body: { metadata: { name, labels: { 'hrto.test/run': 'true' } } } });
  return name;
}

export function helmRelease(namespace: string, name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: { name, namespace },
    spec: {
      interval: '10m',
      chart: { spec: { chart: 'podinfo', sourceRef: { kind: 'HelmRepository', name: 'podinfo' } } },
      ...spec,
    },
  };
}

export async function createHelmRelease(namespace: string, name: string, spec: Record<string, unknown> = {}): Promise<void> {
  await custom.createNamespacedCustomObject({ ...HR, namespace, body: helmRelease(namespace, name, spec) });
}

export interface HelmReleaseJson {
  metadata: { name: string; namespace: string; annotations?: Record<string, string>; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export async function getHelmRelease(namespace: string, name: string): Promise<HelmReleaseJson> {
  return (await custom.getNamespacedCustomObject({ ...HR, namespace, name })) as HelmReleaseJson;
}

export async function createConfigMap(body: V1ConfigMap): Promise<V1ConfigMap> {
  return core.createNamespacedConfigMap({ namespace: body.metadata!.namespace!, body });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until fn returns a value other than undefined/false; throws with the last value after the timeout. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(100);
  }
}

/** A log line about a refused request: "forbidden", or a 403 status (not the 403 of a timestamp's milliseconds). */
export const REFUSED = /forbidden|(?<![.\d])403\b/i;

export const WATCH_LABEL = 'uburro.github.com/helmrelease-trigger-operator';
export const LEGACY_LABEL = 'github.com/uburro/helmrelease-trigger-operator';
export const NAMES = 'uburro.github.com/helmreleases-name';
export const NAMESPACE = 'uburro.github.com/helmreleases-namespace';
export const DIGEST = 'uburro.github.com/config-digest';
export const KEY_DIGESTS = 'uburro.github.com/key-digests';
export const AUTODISCOVERED = 'uburro.github.com/autodiscovered';
export const FLUX_WATCH = 'reconcile.fluxcd.io/watch';

export interface SourceSpec {
  targets?: string;
  targetNamespace?: string;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function labeledConfigMap(namespace: string, name: string, spec: SourceSpec): V1ConfigMap {
  return {
    metadata: {
      name,
      namespace,
      labels: spec.labels ?? { [WATCH_LABEL]: 'true' },
      annotations: {
        ...(spec.targets === undefined ? {} : { [NAMES]: spec.targets }),
        ...(spec.targetNamespace === undefined ? {} : { [NAMESPACE]: spec.targetNamespace }),
        ...spec.annotations,
      },
    },
    data: spec.data ?? { 'values.yaml': 'replicas: 1\n' },
    ...(spec.binaryData ? { binaryData: spec.binaryData } : {}),
  };
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export async function patchConfigMap(namespace: string, name: string, body: object): Promise<void> {
  await core.patchNamespacedConfigMap({ namespace, name, body }, mergePatch);
}

export async function patchHelmRelease(namespace: string, name: string, body: object): Promise<void> {
  await custom.patchNamespacedCustomObject({ ...HR, namespace, name, body }, mergePatch);
}

/** Writes status.history[0] as helm-controller would after a release. */
export async function setLastRelease(namespace: string, name: string, lastDeployed: Date, status = 'deployed'): Promise<void> {
  const at = lastDeployed.toISOString().replace(/\.\d+Z$/, 'Z');
  await custom.patchNamespacedCustomObjectStatus(
    {
      ...HR,
      namespace,
      name,
      body: {
        status: {
          history: [
            {
              name,
              namespace,
              version: 1,
              status,
              chartName: 'podinfo',
              chartVersion: '6.9.0',
              configDigest: 'sha256:0000000000000000000000000000000000000000000000000000000000000000',
              digest: 'sha256:1111111111111111111111111111111111111111111111111111111111111111',
              firstDeployed: at,
              lastDeployed: at,
            },
          ],
        },
      },
    },
    mergePatch,
  );
}

export async function configMapAnnotation(namespace: string, name: string, key: string): Promise<string | undefined> {
  const cm = await core.readNamespacedConfigMap({ namespace, name });
  return cm.metadata?.annotations?.[key];
}

export type SourceKind = 'ConfigMap' | 'Secret';

/** A source's metadata and its content in digest form (a Secret's data is base64, like binaryData). */
export async function readSource(
  kind: SourceKind,
  namespace: string,
  name: string,
): Promise<{ labels: Record<string, string>; annotations: Record<string, string>; digest: string }> {
  const obj = kind === 'ConfigMap' ? await core.readNamespacedConfigMap({ namespace, name }) : await core.readNamespacedSecret({ namespace, name });
  return { labels: obj.metadata?.labels ?? {}, annotations: obj.metadata?.annotations ?? {}, digest: contentDigest(contentOf(kind, obj)) };
}

/** Waits until hrto has recorded the digest of the source's current content. */
export async function waitForRecordedDigest(namespace: string, name: string, timeoutMs = 30_000, kind: SourceKind = 'ConfigMap'): Promise<string> {
  return eventually(`digest recorded on ${kind} ${namespace}/${name}`, async () => {
    const src = await readSource(kind, namespace, name);
    return src.annotations[DIGEST] === src.digest ? src.digest : undefined;
  }, timeoutMs);
}

/** Waits until every named ConfigMap carries the digest of its content. */
export async function allRecorded(ns: string, names: readonly string[], timeoutMs = 120_000): Promise<void> {
  await eventually(
    `${names.length} digests recorded`,
    async () => {
      const list = await core.listNamespacedConfigMap({ namespace: ns });
      const done = list.items.filter((cm) => cm.metadata?.annotations?.['uburro.github.com/config-digest'] === contentDigest({ data: cm.data, binaryData: cm.binaryData }));
      return done.filter((cm) => names.includes(cm.metadata!.name!)).length === names.length;
    },
    timeoutMs,
  );
}

export async function createSecret(namespace: string, name: string, stringData: Record<string, string>, metadata: Partial<V1ObjectMeta> = {}): Promise<void> {
  await core.createNamespacedSecret({ namespace, body: { metadata: { ...metadata, name, namespace }, stringData } });
}

export async function patchSecret(namespace: string, name: string, body: object): Promise<void> {
  await core.patchNamespacedSecret({ namespace, name, body }, mergePatch);
}

export interface AuditEvent {
  verb: string;
  userAgent?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  /** The request body, where the audit policy logs it (HelmRelease patches). */
  requestObject?: { metadata?: { annotations?: Record<string, string | null> }; spec?: { suspend?: boolean } };
}

/** The test control plane's audit log; undefined against an existing cluster (HRTO_TEST_KUBECONFIG given by hand). */
export const auditLogPath = process.env.HRTO_TEST_AUDIT_LOG;

/** Test options for a test that reads the audit log. */
export const needsAudit = { skip: auditLogPath ? false : 'needs the test control plane audit log' };

/** Every request the API server audited for objects of a namespace. */
export function auditEvents(namespace: string): AuditEvent[] {
  if (!auditLogPath) throw new Error('no audit log: these tests need the test control plane');
  return readFileSync(auditLogPath, 'utf8')
    .split('\n')
    .filter((line) => line.includes(namespace))
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.objectRef?.namespace === namespace);
}

/** Successful writes the API server accepted, read from its audit log: patches counted on the server. */
export function auditedWrites(match: { verb: string; resource: string; namespace: string; name?: string }): AuditEvent[] {
  return auditEvents(match.namespace)
    .filter(
      (e) =>
        e.verb === match.verb &&
        e.objectRef?.resource === match.resource &&
        e.objectRef.namespace === match.namespace &&
        (match.name === undefined || e.objectRef.name === match.name) &&
        e.objectRef.subresource === undefined &&
        (e.responseStatus?.code ?? 0) < 300,
    );
}

/** A namespace with HelmRelease `app` (released an hour ago) and a labeled ConfigMap `values` naming it. */
export async function oneSource(prefix: string): Promise<string> {
  const ns = await createNamespace(prefix);
  await createHelmRelease(ns, 'app');
  await setLastRelease(ns, 'app', new Date(Date.now() - 3600_000));
  await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
  return ns;
}

/** Runs fn over items, `limit` at a time. */
export async function inBatches<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(fn));
}
