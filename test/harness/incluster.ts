// hrto's in-cluster path outside a pod: a ServiceAccount bound to a ClusterRole, its token from the
// TokenRequest API, and the folder a kubelet would mount (token, ca.crt, namespace), with the
// environment that points hrto at it and at the test API server.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiException, CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';

export interface ServiceAccountMount {
  dir: string;
  /** KUBERNETES_SERVICE_HOST/PORT and HRTO_SERVICEACCOUNT_DIR. */
  env: Record<string, string>;
  /** Writes a freshly requested token into the folder, as the kubelet does when it rotates it. */
  rotate(): Promise<string>;
  remove(): void;
}

async function ignoreConflict(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 409)) throw err;
  }
}

/** `clusterRole` defaults to cluster-admin; the install test passes the rendered one. */
export async function mountServiceAccount(kc: KubeConfig, namespace: string, name: string, clusterRole = 'cluster-admin'): Promise<ServiceAccountMount> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await ignoreConflict(() => core.createNamespace({ body: { metadata: { name: namespace } } }));
  await ignoreConflict(() => core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }));
  await ignoreConflict(() =>
    rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${namespace}-${name}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      },
    }),
  );
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const server = new URL(cluster.server);
  const dir = mkdtempSync(path.join(tmpdir(), 'hrto-serviceaccount-'));
  const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : cluster.caFile ? readFileSync(cluster.caFile, 'utf8') : '';
  writeFileSync(path.join(dir, 'ca.crt'), ca);
  writeFileSync(path.join(dir, 'namespace'), namespace);
  const rotate = async (): Promise<string> => {
    const answer = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const token = answer.status?.token;
    if (!token) throw new Error(`no token for ServiceAccount ${namespace}/${name}`);
    writeFileSync(path.join(dir, 'token'), token);
    return token;
  };
  await rotate();
  return {
    dir,
    env: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port || '443', HRTO_SERVICEACCOUNT_DIR: dir },
    rotate,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
