// The install manifests as a user renders them: kustomize (built from the Go module proxy) over
// config/, parsed into objects, and server-side applied the way `kubectl apply --server-side` does.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type KubeConfig, type KubernetesObject, KubernetesObjectApi, PatchStrategy, VersionApi } from '@kubernetes/client-node';
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

export const chartDir = path.join(projectRoot, 'charts', NAME);

export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const bin = await ensureBinary(deployBinaries.helm);
  // A private home: helm never reads or writes the user's configuration.
  const home = mkdtempSync(path.join(tmpdir(), 'hrto-helm-'));
  try {
    return await run(bin.path, args, {
      maxBuffer: 16 << 20,
      env: { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home },
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** `helm template` of the chart for the cluster's version, with `--set` values. */
export async function helmTemplate(kc: KubeConfig, set: string[] = []): Promise<Obj[]> {
  const version = (await kc.makeApiClient(VersionApi).getCode()).gitVersion;
  const { stdout } = await helm(['template', NAME, chartDir, '--namespace', SYSTEM_NAMESPACE, '--kube-version', version, ...set.flatMap((s) => ['--set', s])]);
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

/**
 * The identity the install creates (Namespace, ServiceAccount, RBAC), applied for real; no Deployment.
 * Nor the admission policy: bound cluster-wide it would refuse the malformed annotations that other
 * tests write on purpose (admission.test.ts binds it to its own namespaces).
 */
export async function applyIdentity(kc: KubeConfig): Promise<void> {
  const left = new Set(['Deployment', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  await apply(kc, (await kustomize('default')).filter((o) => !left.has(o.kind)));
}

const IDENTITY_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

/**
 * The identity objects of a render (ServiceAccount and RBAC), every name suffixed so that a test's
 * install cannot collide with another's: roleRefs and ServiceAccount subjects follow the rename.
 */
export function isolatedIdentity(list: readonly Obj[], suffix: string): Obj[] {
  const renamed = (name: string): string => `${name}${suffix}`;
  return list
    .filter((o) => IDENTITY_KINDS.has(o.kind))
    .map((o) => {
      const copy = structuredClone(o) as Obj & { roleRef?: { name: string }; subjects?: { kind: string; name: string }[] };
      copy.metadata.name = renamed(copy.metadata.name);
      if (copy.roleRef) copy.roleRef.name = renamed(copy.roleRef.name);
      for (const s of copy.subjects ?? []) if (s.kind === 'ServiceAccount') s.name = renamed(s.name);
      return copy;
    });
}
