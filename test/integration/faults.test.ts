// Faults, bounded in time and size: watch expiry and dropped connections, API errors injected at the
// HTTP level, kube-apiserver restarted and hrto SIGKILLed in the middle of a burst, and fuzzed bad
// input. hrto never crashes and every final source state is triggered.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { contentDigest } from '../../src/digest.js';
import { installHelmReleaseCrd } from '../harness/cluster.js';
import { ControlPlane } from '../harness/controlplane.js';
import { FaultProxy } from '../harness/faultproxy.js';
import { events, metricValue, startHrto, TriggerLog, waitForEvent } from './hrto.js';
import { clusterArgs, hrto, logLines } from './process.js';
import {
  allRecorded,
  auditedWrites,
  core,
  createConfigMap,
  createHelmRelease,
  createNamespace,
  custom,
  eventually,
  helmRelease,
  HR,
  inBatches,
  kc,
  labeledConfigMap,
  NAMES,
  NAMESPACE,
  needsAudit,
  oneSource,
  patchConfigMap,
  setLastRelease,
  sleep,
  waitForRecordedDigest,
  WATCH_LABEL,
} from './support.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function proxy(t: { after: (fn: () => Promise<void>) => void }): Promise<FaultProxy> {
  const p = new FaultProxy(kc.getCurrentCluster()!.server, kc.getCurrentUser()!.token!);
  await p.start();
  t.after(() => p.stop());
  return p;
}

describe('faults', () => {
  it('leadership flicker: writes refused while a slow lease renewal makes isLeader() read false are retried, and every change is triggered once', async (t) => {
    const ns = await createNamespace('fault-flicker');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    const names = Array.from({ length: 12 }, (_, i) => `app-${i}`);
    for (const name of names) {
      await createHelmRelease(ns, name);
      await createConfigMap(labeledConfigMap(ns, `values-${name}`, { targets: name, targetNamespace: ns }));
    }
    const p = await proxy(t);
    const h = await startHrto(
      { watchNamespaces: ns, debounce: '0s', leaderElect: 'true', leaderElectionNamespace: ns, leaderElectLeaseDuration: '4s', leaderElectRenewDeadline: '3s', leaderElectRetryPeriod: '500ms' },
      { kc: p.kubeConfig() },
    );
    t.after(() => h.stop());
    const sources = names.map((name) => `values-${name}`);
    await allRecorded(ns, sources); // adopted
    // Every lease request now takes 800 ms: a renewal (GET + PUT) takes 1.6 s and is dated from its
    // start, so for about 0.7 s of every 2.1 s the leader's isLeader() reads false while it still leads.
    p.inject({ path: /\/leases\//, delayMs: 800, times: 10_000 });
    await sleep(2_500);
    for (const name of names) {
      await patchConfigMap(ns, `values-${name}`, { data: { 'values.yaml': 'replicas: 2\n' } });
      await sleep(700);
    }
    await allRecorded(ns, sources, 60_000);
    await sleep(2_000);
    for (const name of names) assert.equal(triggers.count(name), 1, `${name}: triggered once for its change`);
    const refused = h.logs.filter((l) => l.msg === 'a write was refused while the lease renewal is late; retrying while still leading');
    assert.ok(refused.length > 0, 'the flicker happened: some write was refused as not the leader');
    assert.ok(h.controller.ready());
    t.diagnostic(`${refused.length} writes refused during flickers, each retried`);
  });

  it('watch expiry (410 Gone) and dropped connections: the informers relist and no change is lost', async (t) => {
    const ns = await createNamespace('fault-watch');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    await createHelmRelease(ns, 'app');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    const p = await proxy(t);
    const h = await startHrto({ watchNamespaces: ns }, { kc: p.kubeConfig() });
    t.after(() => h.stop());
    await waitForRecordedDigest(ns, 'values'); // adopted

    // Every informer's next watch ends with 410 Gone, as after an etcd compaction.
    p.inject({ watch: true, expire: true, times: 3 });
    p.dropConnections();
    await patchConfigMap(ns, 'values', { data: { v: 'changed while the watches expired' } });
    await triggers.waitFor('app', 1);
    await eventually('a relist after 410', () => Promise.resolve(h.logs.some((l) => l.msg === 'watch expired (410 Gone); relisting')));

    // The connection drops and reconnecting fails for a while; a change made meanwhile still lands.
    p.inject({ watch: true, status: 503, times: 3 });
    p.dropConnections();
    await patchConfigMap(ns, 'values', { data: { v: 'changed while disconnected' } });
    await triggers.waitFor('app', 2);
    await waitForRecordedDigest(ns, 'values');
    assert.ok((await metricValue(h.metrics, 'hrto_watch_errors_total')) >= 1);
    assert.ok(h.logs.some((l) => l.msg === 'list/watch failed; retrying' && l.status === 503));
    assert.equal(triggers.count('app'), 2);
  });

  it('API errors (403, 404, 409, 429 with Retry-After, 500, a slow response): backoff, logs, metrics, recovery', async (t) => {
    const ns = await oneSource('fault-api');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    const p = await proxy(t);
    // The first list of ConfigMaps is throttled by the server.
    p.inject({ method: 'GET', path: /\/configmaps$/, watch: false, status: 429, retryAfterSeconds: 1, times: 1 });
    const patchPath = new RegExp(`/namespaces/${ns}/helmreleases/app$`);
    for (const status of [403, 404, 409, 429, 500]) p.inject({ method: 'PATCH', path: patchPath, status, times: 1, ...(status === 429 ? { retryAfterSeconds: 1 } : {}) });
    p.inject({ method: 'PATCH', path: patchPath, delayMs: 1500, times: 1 });
    const h = await startHrto({ watchNamespaces: ns }, { kc: p.kubeConfig() });
    t.after(() => h.stop());

    await triggers.waitFor('app', 1, 60_000);
    await waitForRecordedDigest(ns, 'values');
    assert.equal(p.injected.length, 7, p.injected.join('\n'));
    assert.equal(triggers.count('app'), 1, 'triggered once, after the errors');
    assert.ok(h.logs.some((l) => l.msg === 'list/watch failed; retrying' && l.status === 429 && (l.retryInMs as number) >= 1000), 'Retry-After honoured on list');
    for (const status of [403, 409, 429, 500]) {
      assert.ok(h.logs.some((l) => l.msg === 'release reconcile failed; retrying' && l.status === status), `logged ${status}`);
    }
    assert.ok(h.logs.some((l) => l.status === 429 && (l.retryInMs as number) >= 1000), 'Retry-After honoured on patch');
    assert.ok(h.logs.some((l) => l.msg.startsWith('HelmRelease not found when triggering') && l.status === 404), 'the 404');
    assert.equal(await metricValue(h.metrics, 'hrto_triggers_total', { result: 'error' }), 4);
    assert.ok((await metricValue(h.metrics, 'hrto_queue_retries_total', { queue: 'release' })) >= 4, 'four failed patches retried with backoff');
  });

  it('kube-apiserver stopped and restarted in the middle of a burst: every final state is triggered', async (t) => {
    // A control plane of its own: the shared one must not go down under the other tests.
    const cp = new ControlPlane();
    t.after(() => cp.stop());
    await cp.start();
    const own = new KubeConfig();
    own.loadFromFile(cp.kubeconfigPath);
    await installHelmReleaseCrd(own);
    const ownCore = own.makeApiClient(CoreV1Api);
    const ownCustom = own.makeApiClient(CustomObjectsApi);
    const ns = 'burst';
    await ownCore.createNamespace({ body: { metadata: { name: ns } } });
    const names = Array.from({ length: 20 }, (_, i) => `r${i}`);
    for (const name of names) {
      await ownCustom.createNamespacedCustomObject({ ...HR, namespace: ns, body: helmRelease(ns, name) });
      await ownCore.createNamespacedConfigMap({ namespace: ns, body: labeledConfigMap(ns, name, { targets: name, targetNamespace: ns }) });
    }
    const h = await startHrto({ watchNamespaces: ns, debounce: '0s' }, { kc: own });
    t.after(() => h.stop());
    const recorded = async (): Promise<number> => {
      const list = await ownCore.listNamespacedConfigMap({ namespace: ns });
      return list.items.filter((cm) => cm.metadata?.annotations?.['uburro.github.com/config-digest'] === contentDigest({ data: cm.data })).length;
    };
    await eventually('adoption', async () => (await recorded()) === names.length);

    const change = (round: number) => inBatches(names, 10, (name) => ownCore.patchNamespacedConfigMap({ namespace: ns, name, body: { data: { round: String(round) } } }, mergePatch));
    await change(1);
    await cp.restartApiserver(2000); // down in the middle of the burst's triggers
    await change(2);
    await eventually('every final state recorded', async () => (await recorded()) === names.length, 90_000);
    for (const name of names) {
      const release = (await ownCustom.getNamespacedCustomObject({ ...HR, namespace: ns, name })) as { metadata: { annotations?: Record<string, string> } };
      assert.ok(release.metadata.annotations?.['reconcile.fluxcd.io/requestedAt'], `${name} triggered`);
    }
    assert.ok(h.logs.some((l) => l.msg === 'list/watch failed; retrying'), 'the outage was seen');
    assert.ok(h.controller.ready(), 'still running');
  });

  it('hrto SIGKILLed in the middle of a throttled burst and restarted: nothing lost, one trigger per release', needsAudit, async (t) => {
    const ns = await createNamespace('fault-kill');
    const names = Array.from({ length: 30 }, (_, i) => `r${i}`);
    await inBatches(names, 15, (name) => createHelmRelease(ns, name));
    await inBatches(names, 15, (name) => createConfigMap(labeledConfigMap(ns, name, { targets: name, targetNamespace: ns })));
    const args = clusterArgs(ns, ['--debounce=0s', '--min-trigger-interval=0s', '--max-triggers-per-second=20']);
    const first = hrto(args);
    t.after(() => first.kill('SIGKILL'));
    for (const name of names) await waitForRecordedDigest(ns, name);
    await inBatches(names, 30, (name) => patchConfigMap(ns, name, { data: { v: 'burst' } }));
    // Killed while the throttle still holds most triggers back.
    await eventually('the first triggers', () => Promise.resolve(logLines(first).some((l) => l.msg.startsWith('triggered'))));
    first.kill('SIGKILL');
    await first.code;
    const second = hrto(args);
    t.after(() => second.kill('SIGKILL'));
    for (const name of names) await waitForRecordedDigest(ns, name, 60_000);
    await sleep(1_000);
    // Each trigger carries its own record of the content it delivered: a kill between a trigger and
    // the source's digest record no longer makes the next process trigger that release again.
    const patches = auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace: ns });
    for (const name of names) assert.equal(patches.filter((p) => p.objectRef?.name === name).length, 1, `${name}: one trigger for its change`);
    t.diagnostic(`${logLines(first).filter((l) => l.msg.startsWith('triggered')).length} triggered before the kill, the rest after the restart`);
  });

  it('fuzzed annotation values, a 1 MiB ConfigMap, thousands of targets and deletions mid-reconcile never crash it', async (t) => {
    const ns = await createNamespace('fault-fuzz');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    const h = await startHrto({ watchNamespaces: ns, debounce: '0s' });
    t.after(() => h.stop());
    const values = fc.sample(
      fc.oneof(
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.string({ unit: 'binary', maxLength: 50 }),
        fc.constantFrom('$(rm -rf /)', '"; DROP TABLE x; --', '<script>alert(1)</script>', '../../etc/passwd', '\u0000\u202e', 'a'.repeat(100_000)),
      ),
      { numRuns: 40, seed: 42 },
    );
    await inBatches(values.map((v, i) => [v, i] as const), 10, ([value, i]) =>
      createConfigMap(labeledConfigMap(ns, `fuzz-${i}`, { targets: value, targetNamespace: ns })).catch(() => undefined),
    );
    // Thousands of (valid, missing) targets: one Warning, one log line, no storm.
    const many = Array.from({ length: 3000 }, (_, i) => `missing-${i}`).join(',');
    await createConfigMap(labeledConfigMap(ns, 'many', { targets: many, targetNamespace: ns }));
    const warning = await waitForEvent(ns, { kind: 'ConfigMap', name: 'many', reason: 'TargetNotFound' });
    assert.match(warning.message, /and 2980 more/);
    assert.ok(warning.message.length <= 1100);

    // A 1 MiB ConfigMap is digested and triggers like any other.
    await createHelmRelease(ns, 'big-app');
    await setLastRelease(ns, 'big-app', new Date(Date.now() - 3600_000));
    await createConfigMap(labeledConfigMap(ns, 'big', { targets: 'big-app', targetNamespace: ns, data: { 'values.yaml': 'x'.repeat(1024 * 1024 - 1024) } }));
    await triggers.waitFor('big-app', 1);

    // Deleted mid-reconcile: the source right after its change, a release right after its trigger was asked.
    await createHelmRelease(ns, 'gone');
    await setLastRelease(ns, 'gone', new Date(Date.now() - 3600_000));
    await createConfigMap(labeledConfigMap(ns, 'gone-values', { targets: 'gone', targetNamespace: ns }));
    await custom.deleteNamespacedCustomObject({ ...HR, namespace: ns, name: 'gone' });
    await patchConfigMap(ns, 'big', { data: { 'values.yaml': 'small now' } });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'big' });

    // Still alive and working: a plain source triggers.
    await createHelmRelease(ns, 'control');
    await setLastRelease(ns, 'control', new Date(Date.now() - 3600_000));
    await createConfigMap({ metadata: { name: 'control', namespace: ns, labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: 'control', [NAMESPACE]: ns } }, data: { v: '1' } });
    await triggers.waitFor('control', 1);
    const invalid = (await events(ns)).filter((e) => e.reason === 'InvalidReference');
    assert.ok(invalid.length > 0 && invalid.every((e) => e.message.length <= 1100), 'invalid references reported, messages bounded');
    assert.ok(!h.logs.some((l) => l.level >= 60), 'no fatal log');
    assert.ok(h.controller.ready());
  });
});
