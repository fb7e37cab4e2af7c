// Acting as a ServiceAccount in tests: a kubeconfig with a token the API server issues, and
// SelfSubjectAccessReviews asked as that identity. No deploy tools needed (core tier).
import { AuthorizationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';

/** A kubeconfig that authenticates as a ServiceAccount through a token the API server issues. */
export async function serviceAccountKubeConfig(kc: KubeConfig, namespace: string, name: string): Promise<KubeConfig> {
  const core = kc.makeApiClient(CoreV1Api);
  let token: string | undefined;
  // The ServiceAccount may be moments old: its token request can race its creation.
  for (let attempt = 0; !token; attempt++) {
    try {
      token = (await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } })).status?.token;
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  const sa = new KubeConfig();
  const cluster = kc.getCurrentCluster()!;
  sa.loadFromOptions({
    clusters: [{ ...cluster }],
    users: [{ name, token }],
    contexts: [{ name, cluster: cluster.name, user: name }],
    currentContext: name,
  });
  return sa;
}

/** SelfSubjectAccessReview: may this identity do it? Namespace undefined: in every namespace. */
export async function can(kc: KubeConfig, verb: string, resource: string, namespace?: string, group = ''): Promise<boolean> {
  const review = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
    body: { spec: { resourceAttributes: { verb, resource, group, ...(namespace ? { namespace } : {}) } } },
  });
  return review.status?.allowed === true;
}
