// Flux's hub and spoke, kept cheap: a second control plane (etcd + kube-apiserver) is the spoke. The
// hub's HelmReleases reach it through kubeconfig Secrets, as a hub template writes them (inline CA
// and token under the key `value`); two Secrets name the one spoke, so the hub sees two clusters,
// `spoke-a` and `spoke-b`. Other releases install into the hub itself. The hub's helm-controller
// reconciles every one of them; hrto runs in the hub, with one shared ConfigMap and its rollout plan.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ControlPlane } from '../harness/controlplane.js';
import { demoHelmRelease, type FluxControllers } from '../harness/flux.js';
import { ReleaseWatch, rendered, type Seen } from './flux-rollout.js';
import { core, createConfigMap, createNamespace, custom, eventually, HR, patchHelmRelease, WATCH_LABEL } from './support.js';
import { REQUESTED_AT } from './hrto.js';

export const PLAN = 'uburro.github.com/rollout-plan';
/** The ConfigMap every release reads through valuesFrom (autodiscovery finds them all). */
export const PLATFORM = 'platform';
export const CLUSTERS = ['spoke-a', 'spoke-b'] as const;

export interface Member {
  name: string;
  /** Its `ring` label, as a hub template would set it. */
  ring: string;
  /** Its kubeConfig Secret; none: it installs into the hub. */
  cluster?: (typeof CLUSTERS)[number];
}

/** The canary ring on the spoke, ring a across the spoke and the hub, ring b of three. */
export const MEMBERS: readonly Member[] = [
  { name: 'edge', ring: 'canary', cluster: 'spoke-a' },
  { name: 'a-spoke', ring: 'a', cluster: 'spoke-b' },
  { name: 'a-hub', ring: 'a' },
  { name: 'b1', ring: 'b', cluster: 'spoke-a' },
  { name: 'b2', ring: 'b', cluster: 'spoke-b' },
  { name: 'b3', ring: 'b' },
];
export const RING = (ring: string): string[] => MEMBERS.filter((m) => m.ring === ring).map((m) => m.name);
export const ALL_MEMBERS = MEMBERS.map((m) => m.name);

export class HubAndSpoke {
  private constructor(
    readonly ns: string,
    readonly spoke: ControlPlane,
    private readonly spokeCore: CoreV1Api,
    readonly watch: ReleaseWatch,
  ) {}

  /**
   * The spoke, its namespace, the cluster Secrets, the shared ConfigMap with `plan`, and the six
   * releases at `interval` (short: helm-controller's own reconciles would apply a held change soon).
   */
  static async start(flux: FluxControllers, plan: object, interval: string): Promise<HubAndSpoke> {
    const spoke = new ControlPlane();
    await spoke.start();
    try {
      const spokeKc = new KubeConfig();
      spokeKc.loadFromFile(spoke.kubeconfigPath);
      const spokeCore = spokeKc.makeApiClient(CoreV1Api);
      const ns = await createNamespace('rings');
      // The spoke's namespace of the same name holds both the Helm storage and what the chart renders.
      await spokeCore.createNamespace({ body: { metadata: { name: ns } } });
      await flux.createRepository(ns);
      for (const cluster of CLUSTERS) {
        await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: cluster, namespace: ns }, stringData: { value: spoke.inlineKubeconfig() } } });
      }
      await createConfigMap({
        metadata: { name: PLATFORM, namespace: ns, labels: { [WATCH_LABEL]: 'true' }, annotations: { [PLAN]: JSON.stringify(plan) } },
        data: { 'values.yaml': 'message: one\n' },
      });
      for (const m of MEMBERS) {
        const remote = m.cluster ? { kubeConfig: { secretRef: { name: m.cluster } }, targetNamespace: ns } : {};
        await custom.createNamespacedCustomObject({
          ...HR,
          namespace: ns,
          body: demoHelmRelease(ns, m.name, { valuesFrom: PLATFORM, labels: { ring: m.ring }, spec: { interval, ...remote } }),
        });
      }
      const watch = await ReleaseWatch.start(ns);
      const hub = new HubAndSpoke(ns, spoke, spokeCore, watch);
      await eventually('every release installed, in the spoke or the hub', () => Promise.resolve(ALL_MEMBERS.every((name) => watch.current(name)?.latest?.status === 'deployed')), 180_000);
      return hub;
    } catch (err) {
      await spoke.stop();
      throw err;
    }
  }

  /** What the release rendered where it installs: the spoke (Helm names it `<targetNamespace>-<name>`) or the hub. */
  async rendered(name: string): Promise<string | undefined> {
    const member = MEMBERS.find((m) => m.name === name)!;
    if (!member.cluster) return rendered(this.ns, name);
    const cm = await this.spokeCore.readNamespacedConfigMap({ namespace: this.ns, name: `${this.ns}-${name}-rendered` }).catch(() => undefined);
    return cm?.data?.message;
  }

  /** The cluster's Secret now holds a token the spoke refuses (or the right one again). */
  async setClusterToken(cluster: string, token = this.spoke.token): Promise<void> {
    await core.replaceNamespacedSecret({ name: cluster, namespace: this.ns, body: { metadata: { name: cluster, namespace: this.ns }, stringData: { value: this.spoke.inlineKubeconfig(token) } } });
  }

  /** Asks helm-controller to reconcile a release now, as `flux reconcile hr` does (no force). */
  async requestReconcile(name: string): Promise<void> {
    await patchHelmRelease(this.ns, name, { metadata: { annotations: { [REQUESTED_AT]: new Date().toISOString() } } });
  }

  /** Held by hrto: suspended, with hrto's mark. */
  heldByHrto(name: string): boolean {
    const s = this.watch.current(name);
    return s !== undefined && s.suspend && s.hold !== undefined && (JSON.parse(s.hold) as { by?: string }).by === 'helmrelease-trigger-operator';
  }

  /**
   * Releases helm-controller upgraded with a change before hrto's hold landed: its own interval
   * reconcile was already under way when the change was written (the hold lands tens of ms after
   * the write). hrto reports each (an UpgradedOutsideRollout Warning, docs/rollouts.md) and counts
   * it as that release's result; the tests hold the others to the rollout, and these to the report.
   */
  async raced(since: number): Promise<Set<string>> {
    const list = await core.listNamespacedEvent({ namespace: this.ns });
    const at = (e: (typeof list.items)[number]): number => Date.parse(String(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? 0));
    return new Set(list.items.filter((e) => e.reason === 'UpgradedOutsideRollout' && e.involvedObject.kind === 'HelmRelease' && at(e) >= since - 1000).map((e) => e.involvedObject.name!));
  }

  /** Every state of the releases since a time: the failure message of a test. */
  timelines(since: number): string {
    return ALL_MEMBERS.map((name) => `${name}:\n${this.watch.timeline(name, since)}`).join('\n');
  }

  current(name: string): Seen {
    const s = this.watch.current(name);
    if (!s) throw new Error(`the watch has not seen ${name}`);
    return s;
  }

  async stop(): Promise<void> {
    await this.watch.stop();
    await this.spoke.stop();
  }
}
