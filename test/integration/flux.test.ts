// End to end with Flux's own source-controller, helm-controller and notification-controller: a
// HelmRelease reading a labeled ConfigMap is installed from a Helm repository on loopback; editing
// the ConfigMap makes hrto trigger and helm-controller upgrade the release, and an Alert on the
// release tells a webhook why. Flux's own watch label is measured beside it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { demoHelmRelease, FluxControllers, type FluxEventBody } from '../harness/flux.js';
import { webhook } from '../harness/webhook.js';
import { metricValue, startHrto } from './hrto.js';
import {
  auditLogPath,
  core,
  createConfigMap,
  createNamespace,
  custom,
  eventually,
  FLUX_WATCH,
  getHelmRelease,
  HR,
  kc,
  NAMES,
  NAMESPACE,
  patchConfigMap,
  waitForRecordedDigest,
  WATCH_LABEL,
} from './support.js';

const onTestControlPlane = { skip: auditLogPath ? false : 'starts Flux controllers: needs the test control plane' };
const UPGRADE_TIMEOUT = 180_000;

interface Snapshot {
  version: number;
  status: string;
}

async function history(ns: string, name: string): Promise<Snapshot[]> {
  const status = (await getHelmRelease(ns, name)).status as { history?: Snapshot[] } | undefined;
  return status?.history ?? [];
}

async function waitForRevision(ns: string, name: string, version: number): Promise<void> {
  await eventually(
    `${ns}/${name} revision ${version} deployed`,
    async () => {
      const latest = (await history(ns, name))[0];
      return latest?.version === version && latest.status === 'deployed';
    },
    UPGRADE_TIMEOUT,
  );
}

async function rendered(ns: string, release: string): Promise<string | undefined> {
  const cm = await core.readNamespacedConfigMap({ namespace: ns, name: `${release}-rendered` }).catch(() => undefined);
  return cm?.data?.message;
}

/** A HelmRelease of the demo chart reading one ConfigMap. */
async function helmRelease(ns: string, name: string, valuesConfigMap: string): Promise<void> {
  await custom.createNamespacedCustomObject({ ...HR, namespace: ns, body: demoHelmRelease(ns, name, { valuesFrom: valuesConfigMap }) });
}

describe('end to end with Flux', onTestControlPlane, () => {
  let flux: FluxControllers;
  before(async () => {
    flux = new FluxControllers(process.env.HRTO_TEST_KUBECONFIG!, kc);
    await flux.start({ notifications: true });
  });
  after(() => flux?.stop());

  it('hrto triggers and helm-controller upgrades the release with the edited values', async (t) => {
    const ns = await createNamespace('e2e');
    await flux.createRepository(ns);
    await createConfigMap({
      metadata: { name: 'demo-values', namespace: ns, labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: 'demo', [NAMESPACE]: ns } },
      data: { 'values.yaml': 'message: one\n' },
    });
    const h = await startHrto({ watchNamespaces: ns });
    t.after(() => h.stop());
    await helmRelease(ns, 'demo', 'demo-values');
    await waitForRevision(ns, 'demo', 1);
    assert.equal(await rendered(ns, 'demo'), 'one');
    await waitForRecordedDigest(ns, 'demo-values'); // adopted: the release already has this content

    const edited = Date.now();
    await patchConfigMap(ns, 'demo-values', { data: { 'values.yaml': 'message: two\n' } });
    await waitForRevision(ns, 'demo', 2);
    const seconds = (Date.now() - edited) / 1000;
    assert.equal(await rendered(ns, 'demo'), 'two');
    const hr = await getHelmRelease(ns, 'demo');
    const requested = hr.metadata.annotations?.['reconcile.fluxcd.io/requestedAt'];
    assert.ok(requested, 'hrto requested the reconcile');
    assert.equal(hr.metadata.annotations?.['reconcile.fluxcd.io/forceAt'], requested);
    await eventually('helm-controller to acknowledge', async () => ((await getHelmRelease(ns, 'demo')).status as { lastHandledForceAt?: string } | undefined)?.lastHandledForceAt === requested);
    t.diagnostic(`hrto path: ConfigMap edit -> revision 2 deployed in ${seconds.toFixed(1)}s`);
  });

  it("Flux's own watch label: helm-controller upgrades by itself, and hrto leaves that release to it", async (t) => {
    const ns = await createNamespace('e2e-watch');
    await flux.createRepository(ns);
    await createConfigMap({
      metadata: { name: 'watched-values', namespace: ns, labels: { [FLUX_WATCH]: 'Enabled' } },
      data: { 'values.yaml': 'message: one\n' },
    });
    const h = await startHrto({ watchNamespaces: ns });
    t.after(() => h.stop());
    await helmRelease(ns, 'watched', 'watched-values');
    await waitForRevision(ns, 'watched', 1);
    await waitForRecordedDigest(ns, 'watched-values'); // autodiscovered and adopted

    const edited = Date.now();
    await patchConfigMap(ns, 'watched-values', { data: { 'values.yaml': 'message: two\n' } });
    await waitForRevision(ns, 'watched', 2);
    const seconds = (Date.now() - edited) / 1000;
    assert.equal(await rendered(ns, 'watched'), 'two');
    await waitForRecordedDigest(ns, 'watched-values');
    assert.equal((await getHelmRelease(ns, 'watched')).metadata.annotations?.['reconcile.fluxcd.io/requestedAt'], undefined, 'no trigger from hrto');
    assert.ok(h.logs.some((l) => l.msg.startsWith('left to helm-controller')));
    assert.equal((await history(ns, 'watched')).length, 2, 'upgraded once, not twice');
    t.diagnostic(`Flux watch path: ConfigMap edit -> revision 2 deployed in ${seconds.toFixed(1)}s`);
  });

  it("an Alert on the HelmRelease receives hrto's trigger, with source and digest, beside helm-controller's upgrade", async (t) => {
    const hook = await webhook<FluxEventBody>();
    t.after(() => hook.close());
    const received = hook.bodies;
    const ns = await createNamespace('e2e-alert');
    await flux.alertTo(ns, hook.url);
    await flux.createRepository(ns);
    await createConfigMap({
      metadata: { name: 'alert-values', namespace: ns, labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: 'alerted', [NAMESPACE]: ns } },
      data: { 'values.yaml': 'message: one\n' },
    });
    const h = await startHrto({ watchNamespaces: ns, eventsAddr: flux.eventsAddress });
    t.after(() => h.stop());
    await helmRelease(ns, 'alerted', 'alert-values');
    await waitForRevision(ns, 'alerted', 1);
    await waitForRecordedDigest(ns, 'alert-values');

    await patchConfigMap(ns, 'alert-values', { data: { 'values.yaml': 'message: two\n' } });
    await waitForRevision(ns, 'alerted', 2);
    const digest = await waitForRecordedDigest(ns, 'alert-values');
    const fromHrto = await eventually('the webhook to receive the trigger', () => Promise.resolve(received.find((e) => e.reportingController === 'helmrelease-trigger-operator')));
    assert.deepEqual(
      { kind: fromHrto.involvedObject.kind, name: fromHrto.involvedObject.name, namespace: fromHrto.involvedObject.namespace },
      { kind: 'HelmRelease', name: 'alerted', namespace: ns },
    );
    assert.equal(fromHrto.reason, 'Triggered');
    assert.equal(fromHrto.severity, 'info');
    assert.match(fromHrto.message, new RegExp(`^ConfigMap ${ns}/alert-values changed \\(sha256:[0-9a-f]{12}; changed values.yaml\\): requested forced upgrade at `));
    assert.equal(fromHrto.metadata?.['uburro.github.com/source'], `ConfigMap/${ns}/alert-values`);
    assert.equal(fromHrto.metadata?.['uburro.github.com/keys'], 'changed values.yaml', 'the Alert says which keys changed');
    assert.equal(fromHrto.metadata?.['uburro.github.com/digest'], digest);
    const fromHelm = await eventually("helm-controller's upgrade event", () =>
      Promise.resolve(received.find((e) => e.reportingController === 'helm-controller' && /upgrade/i.test(e.reason))),
    );
    assert.equal(fromHelm.involvedObject.name, 'alerted');
    assert.ok(received.indexOf(fromHrto) < received.indexOf(fromHelm), "hrto's reason arrives before helm-controller's result");
    assert.ok((await metricValue(h.metrics, 'hrto_flux_event_posts_total', { result: 'success' })) >= 1);
    assert.equal(await metricValue(h.metrics, 'hrto_flux_event_posts_total', { result: 'failed' }), 0);
    t.diagnostic(`received from hrto: ${JSON.stringify(fromHrto)}`);
  });
});

