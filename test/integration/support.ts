// Shared helpers for integration tests: the cluster from HRTO_TEST_KUBECONFIG, a namespace per
// test, HelmRelease fixtures and polling.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';

export function kubeConfig(): KubeConfig {
  const path = process.env.HRTO_TEST_KUBECONFIG;
  if (!path) throw new Error('HRTO_TEST_KUBECONFIG is not set: run the tests through test/run.ts (npm test)');
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export const kc = kubeConfig();
export const core = kc.makeApiClient(CoreV1Api);
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
