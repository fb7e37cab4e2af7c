// Prepares a cluster for hrto's tests and demo: Flux's HelmRelease CRD, installed and Established.
import { readFileSync } from 'node:fs';
import {
  ApiextensionsV1Api,
  ApiException,
  type KubeConfig,
  loadAllYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { helmReleaseCrdPath } from './binaries.js';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Installs the pinned helm-controller's HelmRelease CRD unless present; waits until Established. */
export async function installHelmReleaseCrd(kc: KubeConfig, timeoutMs = 60_000): Promise<string> {
  const crd = await helmReleaseCrdPath();
  await installCrds(kc, [crd.path], timeoutMs);
  return crd.version;
}

/** Installs CRD files unless present; waits until each is Established. */
export async function installCrds(kc: KubeConfig, files: readonly string[], timeoutMs = 60_000): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const docs = files.flatMap((file) => loadAllYaml(readFileSync(file, 'utf8')) as V1CustomResourceDefinition[]).filter((d) => d?.kind === 'CustomResourceDefinition');
  for (const body of docs) {
    try {
      await api.createCustomResourceDefinition({ body });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw err;
    }
    const name = body.metadata!.name!;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await api.readCustomResourceDefinition({ name });
      if (current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after ${timeoutMs}ms`);
      await sleep(100);
    }
  }
}
