// hrto's in-cluster path outside a pod: a ServiceAccount bound to a ClusterRole, its token from the
// TokenRequest API, and the folder a kubelet would mount (token, ca.crt, namespace), with the
// environment that points hrto at it and at the test API server.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiException, CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';

export interface IssuedToken {
  token: string;
  /** Invalidates the token at once: it is bound to a Secret, which this deletes. */
  revoke(): Promise<void>;
}

export interface ServiceAccountMount {
  dir: string;
  /** KUBERNETES_SERVICE_HOST/PORT and HRTO_SERVICEACCOUNT_DIR. */
  env: Record<string, string>;
  /** The token in the folder now. */
  current: IssuedToken;
  /** Writes a freshly requested token into the folder, as the kubelet does when it rotates it. */
  rotate(): Promise<IssuedToken>;
  remove(): void;
}

async function ignoreConflict(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 409)) throw err;
  }
}

/**
 * `clusterRole` (default cluster-admin) is bound to the ServiceAccount; `false` keeps the RBAC that
 * exists (the rendered install's).
 */
/** What a token issued for a mount lasts (a kubelet's projected tokens default to about an hour too). */
export const TOKEN_LIFETIME_SECONDS = 3600;

export async function mountServiceAccount(kc: KubeConfig, namespace: string, name: string, clusterRole: string | false = 'cluster-admin'): Promise<ServiceAccountMount> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await ignoreConflict(() => core.createNamespace({ body: { metadata: { name: namespace } } }));
  await ignoreConflict(() => core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }));
  if (clusterRole) await ignoreConflict(() =>
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
  // A kubelet binds each token to its pod; here each is bound to a Secret of its own, so deleting the
  // Secret makes the API server refuse the token, as it does once a pod is gone.
  let issued = 0;
  const issue = async (): Promise<IssuedToken> => {
    const holder = await core.createNamespacedSecret({ namespace, body: { metadata: { name: `${name}-token-${Date.now().toString(36)}-${issued++}` } } });
    const boundObjectRef = { kind: 'Secret', apiVersion: 'v1', name: holder.metadata!.name!, uid: holder.metadata!.uid! };
    const answer = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: TOKEN_LIFETIME_SECONDS, boundObjectRef } } });
    const token = answer.status?.token;
    if (!token) throw new Error(`no token for ServiceAccount ${namespace}/${name}`);
    writeFileSync(path.join(dir, 'token'), token);
    return { token, revoke: async () => void (await core.deleteNamespacedSecret({ namespace, name: boundObjectRef.name })) };
  };
  const mount: ServiceAccountMount = {
    dir,
    env: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port || '443', HRTO_SERVICEACCOUNT_DIR: dir },
    current: await issue(),
    rotate: async () => (mount.current = await issue()),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  return mount;
}
