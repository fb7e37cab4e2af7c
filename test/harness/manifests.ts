// The install manifests as a user renders them: kustomize (built from the Go module proxy) over
// config/, parsed into objects, and server-side applied the way `kubectl apply --server-side` does.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { type KubeConfig, type KubernetesObject, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { deployBinaries, ensureBinary, projectRoot } from './binaries.js';

const run = promisify(execFile);

export const SYSTEM_NAMESPACE = 'helmrelease-trigger-operator-system';
export const NAME = 'helmrelease-trigger-operator';

export interface Obj extends KubernetesObject {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

export function docs(yamlText: string): Obj[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null);
}

/** `kustomize build config/<dir>`. */
export async function kustomize(dir: string): Promise<Obj[]> {
  const bin = await ensureBinary(deployBinaries.kustomize);
  const { stdout } = await run(bin.path, ['build', path.join(projectRoot, 'config', dir)], { maxBuffer: 16 << 20 });
  return docs(stdout);
}

/** Server-side apply; `dryRun` 'All' validates and admits without storing. */
export async function apply(kc: KubeConfig, list: readonly Obj[], dryRun?: 'All'): Promise<void> {
  const objects = kc.makeApiClient(KubernetesObjectApi);
  for (const obj of list) {
    await objects.patch(obj, undefined, dryRun, 'hrto-install-test', true, PatchStrategy.ServerSideApply).catch((err: unknown) => {
      throw new Error(`${obj.kind} ${obj.metadata.name}: ${(err as Error).message}`);
    });
  }
}

/** The identity the install creates (Namespace, ServiceAccount, RBAC), applied for real; no Deployment. */
export async function applyIdentity(kc: KubeConfig): Promise<void> {
  await apply(kc, (await kustomize('default')).filter((o) => o.kind !== 'Deployment'));
}
