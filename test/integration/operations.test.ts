// Running hrto in production: leader election and failover, graceful shutdown, debounce and minimum
// interval (counted as patches on the API server), scoping and sharding, policy, dry run, metrics,
// probes and explain.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoordinationV1Api } from '@kubernetes/client-node';
import type { ExplainReport } from '../../src/explain.js';
import { microTime } from '../../src/leader.js';
import { freePort } from '../harness/controlplane.js';
import { fixture } from './fixture.js';
import { events, metricValue, startHrto, TriggerLog, waitForEvent } from './hrto.js';
import { clusterArgs, fastLeaderElection, hrto, leaderAndStandby, logLines, unreachableKubeconfig, waitForLog } from './process.js';
import {
  api,
  auditedWrites,
  auditEvents,
  core,
  createConfigMap,
  createHelmRelease,
  createNamespace,
  custom,
  eventually,
  helmRelease,
  HR,
  kc,
  labeledConfigMap,
  needsAudit,
  oneSource,
  patchConfigMap,
  setLastRelease,
  sleep,
  type AuditEvent,
  waitForRecordedDigest,
} from './support.js';

const hrPatches = (namespace: string, name: string) => auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace, name });

describe('high availability', () => {
  it('kill the leader: the standby takes over and a change made during the failover is triggered exactly once', needsAudit, async (t) => {
    const ns = await oneSource('ha-kill');
    const args = clusterArgs(ns, [...fastLeaderElection(ns), '--min-trigger-interval=0s']);
    const { leader: a, standby: b } = await leaderAndStandby(t, args);
    await waitForRecordedDigest(ns, 'values'); // first sight, newer than the release: triggered by a
    assert.equal(hrPatches(ns, 'app').length, 1);

    a.kill('SIGKILL');
    await patchConfigMap(ns, 'values', { data: { v: 'changed during the failover' } });
    await waitForLog(b, 'b to take over', (l) => l.msg === 'became the leader');
    await waitForRecordedDigest(ns, 'values');
    await sleep(500);
    assert.equal(hrPatches(ns, 'app').length, 2, 'exactly one more trigger');
    assert.ok(logLines(b).some((l) => l.msg.startsWith('triggered HelmRelease')));
    const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: ns, name: 'helmrelease-trigger-operator' });
    assert.ok((lease.spec?.leaseTransitions ?? 0) >= 1);
    assert.ok(logLines(b).some((l) => l.msg === 'became the leader' && l.identity === lease.spec?.holderIdentity));
  });

  it('SIGTERM: the leader finishes, releases the lease and exits 0; the standby takes over without waiting for expiry', async (t) => {
    const ns = await oneSource('ha-term');
    // A 60s lease: a takeover well within it proves the lease was handed over, not expired.
    const args = clusterArgs(ns, ['--leader-elect', `--leader-election-namespace=${ns}`, '--leader-elect-lease-duration=60s', '--leader-elect-renew-deadline=40s', '--leader-elect-retry-period=500ms']);
    const { leader: a, standby: b } = await leaderAndStandby(t, args);
    a.kill('SIGTERM');
    assert.equal(await a.code, 0);
    assert.ok(logLines(a).some((l) => l.msg === 'released the lease'));
    const tookOver = Date.now();
    await waitForLog(b, 'b to take over', (l) => l.msg === 'became the leader');
    assert.ok(Date.now() - tookOver < 30_000, 'handed over, not expired');
  });
});

describe('bursts', () => {
  it('changes of several sources within the debounce window become one trigger', needsAudit, async (t) => {
    const { ns } = await fixture(t, 'burst-debounce', { debounce: '2s' });
    await createHelmRelease(ns, 'app');
    await setLastRelease(ns, 'app', new Date(Date.now() + 3600_000)); // first sight adopts
    await createConfigMap(labeledConfigMap(ns, 'one', { targets: 'app', targetNamespace: ns }));
    await createConfigMap(labeledConfigMap(ns, 'two', { targets: 'app', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'one');
    await waitForRecordedDigest(ns, 'two');
    for (let i = 0; i < 5; i++) await patchConfigMap(ns, 'one', { data: { v: String(i) } });
    await patchConfigMap(ns, 'two', { data: { v: 'x' } });
    await waitForRecordedDigest(ns, 'one');
    await waitForRecordedDigest(ns, 'two');
    assert.equal(hrPatches(ns, 'app').length, 1, 'one patch for six changes of two sources');
    const event = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'Triggered' });
    assert.ok(event.message.includes(`ConfigMap ${ns}/one`) && event.message.includes(`ConfigMap ${ns}/two`), event.message);
  });

  it('a change within the minimum interval waits for it to end, and is never dropped', needsAudit, async (t) => {
    const { ns, triggers } = await fixture(t, 'burst-interval', { debounce: '0s', minTriggerInterval: '3s' });
    await createHelmRelease(ns, 'app');
    await setLastRelease(ns, 'app', new Date(Date.now() + 3600_000));
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 'values');
    for (let i = 0; i < 3; i++) {
      await patchConfigMap(ns, 'values', { data: { v: String(i) } });
      await triggers.waitFor('app', i + 1, 30_000);
    }
    await waitForRecordedDigest(ns, 'values');
    const at = hrPatches(ns, 'app').map((e) => Date.parse(e.requestReceivedTimestamp));
    assert.equal(at.length, 3, 'every change triggered, none dropped');
    for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! >= 2900, `patches ${at[i]! - at[i - 1]!}ms apart`);
  });
});

describe('scoping', () => {
  it("shards split sources by Flux's sharding label; each source is triggered by exactly one instance", needsAudit, async (t) => {
    const ns = await createNamespace('shard');
    await createHelmRelease(ns, 'app1');
    await createHelmRelease(ns, 'app2');
    for (const name of ['app1', 'app2']) await setLastRelease(ns, name, new Date(Date.now() - 3600_000));
    const shard1 = await startHrto({ watchNamespaces: ns, watchLabelSelector: 'sharding.fluxcd.io/key=shard1' });
    const main = await startHrto({ watchNamespaces: ns, watchLabelSelector: '!sharding.fluxcd.io/key' });
    t.after(async () => {
      await shard1.stop();
      await main.stop();
    });
    const labels = { 'uburro.github.com/helmrelease-trigger-operator': 'true' };
    await createConfigMap(labeledConfigMap(ns, 's1', { targets: 'app1', targetNamespace: ns, labels: { ...labels, 'sharding.fluxcd.io/key': 'shard1' } }));
    await createConfigMap(labeledConfigMap(ns, 'm', { targets: 'app2', targetNamespace: ns }));
    await waitForRecordedDigest(ns, 's1');
    await waitForRecordedDigest(ns, 'm');
    assert.equal(hrPatches(ns, 'app1').length, 1);
    assert.equal(hrPatches(ns, 'app2').length, 1);
    assert.ok(shard1.logs.some((l) => l.msg.startsWith('triggered') && l.target === `${ns}/app1`));
    assert.ok(!shard1.logs.some((l) => l.msg.startsWith('triggered') && l.target === `${ns}/app2`));
    assert.ok(main.logs.some((l) => l.msg.startsWith('triggered') && l.target === `${ns}/app2`));
  });

  it('HelmReleases outside --helmrelease-label-selector are neither triggered nor reported missing', async (t) => {
    const { ns, triggers, hrto: h } = await fixture(t, 'scope-hr', { helmreleaseLabelSelector: 'team.example.com/managed=true' });
    await custom.createNamespacedCustomObject({
      ...HR,
      namespace: ns,
      body: { ...helmRelease(ns, 'managed'), metadata: { name: 'managed', namespace: ns, labels: { 'team.example.com/managed': 'true' } } },
    });
    await createHelmRelease(ns, 'unmanaged');
    for (const name of ['managed', 'unmanaged']) await setLastRelease(ns, name, new Date(Date.now() - 3600_000));
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'managed,unmanaged', targetNamespace: ns }));
    await triggers.waitFor('managed', 1);
    await waitForRecordedDigest(ns, 'values');
    assert.equal(triggers.count('unmanaged'), 0);
    assert.ok(!(await events(ns)).some((e) => e.reason === 'TargetNotFound'));
    assert.equal(await metricValue(h.metrics, 'hrto_missing_targets_total'), 0);
  });
});

describe('policy and dry run', () => {
  it('--no-cross-namespace-refs refuses a source targeting another namespace, with a Warning Event and a metric', async (t) => {
    const other = await createNamespace('policy-other');
    const { ns, hrto: h } = await fixture(t, 'policy', { noCrossNamespaceRefs: 'true' }, { extraNamespaces: [other] });
    const remote = await TriggerLog.start(other);
    t.after(() => remote.stop());
    await createHelmRelease(other, 'victim');
    await setLastRelease(other, 'victim', new Date(Date.now() - 3600_000));
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'victim', targetNamespace: other }));
    const event = await waitForEvent(ns, { kind: 'ConfigMap', name: 'values', reason: 'CrossNamespaceRefused' });
    assert.equal(event.type, 'Warning');
    assert.match(event.message, /no-cross-namespace-refs/);
    assert.equal(await metricValue(h.metrics, 'hrto_invalid_references_total', { reason: 'cross-namespace' }), 1);
    assert.ok(h.logs.some((l) => l.msg.startsWith('invalid target reference') && l.source === `ConfigMap/${ns}/values`));
    await sleep(500);
    assert.equal(remote.total(), 0);
  });

  it('--dry-run says what it would trigger and writes nothing but Events', needsAudit, async (t) => {
    const { ns, hrto: h } = await fixture(t, 'dry-run', { dryRun: 'true' });
    await createHelmRelease(ns, 'app');
    await setLastRelease(ns, 'app', new Date(Date.now() - 3600_000));
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    const event = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'DryRunTrigger' });
    assert.match(event.message, /would request forced upgrade/);
    assert.ok(h.logs.some((l) => l.msg.startsWith('dry run: would trigger') && l.target === `${ns}/app`));
    await eventually('the would-be digest record', () => Promise.resolve(h.logs.some((l) => l.msg === 'dry run: would patch the source')));
    assert.equal(hrPatches(ns, 'app').length, 0);
    assert.equal(auditedWrites({ verb: 'patch', resource: 'configmaps', namespace: ns }).length, 0);
    assert.equal(await metricValue(h.metrics, 'hrto_triggers_total', { result: 'dry-run' }), 1);
    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: 'values' });
    assert.equal(cm.metadata?.annotations?.['uburro.github.com/config-digest'], undefined);
  });
});

describe('metrics and probes', () => {
  it('serves every documented series on /metrics after a trigger', async (t) => {
    const ns = await oneSource('metrics');
    const metricsPort = await freePort();
    const run = hrto([...clusterArgs(ns), `--metrics-bind-address=127.0.0.1:${metricsPort}`]);
    t.after(() => run.kill('SIGKILL'));
    await waitForRecordedDigest(ns, 'values');
    const body = await eventually('metrics after the trigger', async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return /hrto_triggers_total\{result="success",mode="force"\} 1/.test(text) ? text : undefined;
    });
    const samples = new Map(
      body
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as const),
    );
    const value = (series: string): number | undefined => samples.get(series);
    assert.equal(value('hrto_trigger_latency_seconds_count'), 1);
    assert.equal(value('hrto_leader'), 1);
    assert.equal(value('hrto_watched_sources{kind="ConfigMap"}'), 1);
    assert.equal(value('hrto_watched_helmreleases'), 1);
    assert.equal(value(`hrto_cache_synced{informer="helmreleases[${ns}]"}`), 1);
    assert.equal(value('hrto_queue_depth{queue="source"}'), 0);
    assert.equal(value('rest_client_requests_total{verb="patch",resource="helmreleases",code="200"}'), 1, 'the trigger');
    assert.equal(value('rest_client_request_duration_seconds_count{verb="patch",resource="helmreleases"}'), 1);
    assert.ok((value('rest_client_requests_total{verb="watch",resource="configmaps",code="200"}') ?? 0) >= 1);
    for (const family of ['hrto_queue_retries_total', 'hrto_invalid_references_total', 'hrto_reconciles_total', 'process_resident_memory_bytes', 'rest_client_rate_limiter_duration_seconds']) {
      assert.match(body, new RegExp(`# TYPE ${family} `), family);
    }
  });

  it('/readyz is 503 until the caches sync, /healthz is 200 while the process serves; a standby is ready', async (t) => {
    const kubeconfig = await unreachableKubeconfig(t);
    const probe = async (port: number, path: string): Promise<number> => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
    const stuckPort = await freePort();
    const stuck = hrto(['--kubeconfig', kubeconfig, '--metrics-bind-address=0', `--health-probe-bind-address=127.0.0.1:${stuckPort}`], { CACHE_SYNC_TIMEOUT: '60s' });
    t.after(() => stuck.kill('SIGKILL'));
    await eventually('healthz', async () => (await probe(stuckPort, '/healthz')) === 200);
    assert.equal(await probe(stuckPort, '/readyz'), 503);

    // A standby (the lease is held by someone else) is ready: it only waits to write.
    const ns = await oneSource('probes');
    // Raw JSON: the API server wants MicroTime (six fraction digits), which client-node's Date does not write.
    const now = microTime(Date.now());
    await api.json('POST', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`, {
      body: { metadata: { name: 'helmrelease-trigger-operator', namespace: ns }, spec: { holderIdentity: 'someone-else', leaseDurationSeconds: 3600, renewTime: now, acquireTime: now } },
    });
    const port = await freePort();
    const metricsPort = await freePort();
    const standby = hrto([...clusterArgs(ns, ['--leader-elect', `--leader-election-namespace=${ns}`]), `--health-probe-bind-address=127.0.0.1:${port}`, `--metrics-bind-address=127.0.0.1:${metricsPort}`]);
    t.after(() => standby.kill('SIGKILL'));
    await eventually('readyz', async () => (await probe(port, '/readyz')) === 200);
    assert.match(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), /^hrto_leader 0$/m);
    assert.equal((await core.readNamespacedConfigMap({ namespace: ns, name: 'values' })).metadata?.annotations?.['uburro.github.com/config-digest'], undefined, 'a standby writes nothing');
  });
});

describe('explain', () => {
  it('reports which sources feed which releases, their digests, and what is pending and why', async () => {
    const ns = await createNamespace('explain');
    await createHelmRelease(ns, 'app', { valuesFrom: [{ kind: 'ConfigMap', name: 'shared', valuesKey: 'app.yaml' }, { kind: 'Secret', name: 'absent', optional: true }] });
    await setLastRelease(ns, 'app', new Date(Date.now() - 3600_000));
    await createHelmRelease(ns, 'paused', { suspend: true });
    await createConfigMap(labeledConfigMap(ns, 'shared', { targets: 'app,paused,gone', targetNamespace: ns, data: { 'app.yaml': 'a: 1\n' } }));
    await createConfigMap(labeledConfigMap(ns, 'broken', { targets: 'Not_Valid', targetNamespace: ns }));
    const run = hrto(['explain', '--kubeconfig', process.env.HRTO_TEST_KUBECONFIG!, `--watch-namespaces=${ns}`, '-n', ns, '-o', 'json']);
    assert.equal(await run.code, 0, run.stderr());
    const report = JSON.parse(run.stdout()) as ExplainReport;
    const row = (release: string, source: string) =>
      report.releases.find((r) => r.release === `${ns}/${release}`)?.sources.find((s) => s.source === source);
    const app = row('app', `ConfigMap/${ns}/shared`);
    assert.equal(app?.via, 'annotation+valuesFrom');
    assert.deepEqual(app?.keys, ['app.yaml']);
    assert.equal(app?.state, 'trigger');
    assert.equal(app?.pending, true);
    assert.match(app?.digest ?? '', /^sha256:/);
    assert.equal(row('app', `Secret/${ns}/absent`)?.state, 'unwatched');
    assert.equal(row('paused', `ConfigMap/${ns}/shared`)?.state, 'suspended');
    assert.equal(row('gone', `ConfigMap/${ns}/shared`)?.state, 'missing');
    assert.equal(report.releases.find((r) => r.release === `${ns}/gone`)?.exists, false);
    assert.ok(report.refused.some((r) => r.source === `ConfigMap/${ns}/broken` && r.reason.includes('Not_Valid')));

    const table = hrto(['explain', '--kubeconfig', process.env.HRTO_TEST_KUBECONFIG!, `--watch-namespaces=${ns}`, '-n', ns, 'app']);
    assert.equal(await table.code, 0);
    const lines = table.stdout().split('\n');
    assert.match(lines[0] ?? '', /^HELMRELEASE\s+WAVE\s+SOURCE\s+VIA\s+DIGEST\s+RECORDED\s+STATUS$/);
    assert.ok(lines.some((l) => l.includes(`${ns}/app`) && l.includes('trigger pending')));
    assert.ok(!lines.some((l) => l.includes(`${ns}/paused`)), 'filtered to the named release');
  });
});

describe('API client manners', () => {
  it('--kube-api-qps paces every request hrto sends, and rest_client_* counts exactly what the API server saw', needsAudit, async (t) => {
    const ns = await createNamespace('qps');
    await createHelmRelease(ns, 'app');
    await setLastRelease(ns, 'app', new Date(Date.now() + 3600_000)); // newer than the content: adopted, one patch each
    const sources = 16;
    for (let i = 0; i < sources; i++) await createConfigMap(labeledConfigMap(ns, `values-${i}`, { targets: 'app', targetNamespace: ns }));
    const [qps, burst] = [5, 2];
    const startedAt = Date.now();
    const h = await startHrto({ watchNamespaces: ns, kubeApiQps: String(qps), kubeApiBurst: String(burst) });
    t.after(() => h.stop());
    for (let i = 0; i < sources; i++) await waitForRecordedDigest(ns, `values-${i}`, 60_000);
    // The test control plane audits lists and writes; a watch is audited when it ends, minutes later.
    const fromHrto = (): AuditEvent[] => auditEvents(ns).filter((e) => e.userAgent?.startsWith('hrto/') && e.verb !== 'watch');
    const counted = async (): Promise<number> =>
      (await metricValue(h.metrics, 'rest_client_requests_total')) - (await metricValue(h.metrics, 'rest_client_requests_total', { verb: 'watch' }));
    // Every request hrto sent is counted by it, and nothing else: the two counts agree.
    const seen = await eventually('the audit log and the metric to agree', async () => {
      const audited = fromHrto();
      return audited.length === (await counted()) && audited;
    });
    const watches = await metricValue(h.metrics, 'rest_client_requests_total', { verb: 'watch' });
    assert.ok(watches >= 3, `a watch per informer: ${watches}`);
    assert.ok(seen.length >= sources + 3, `lists and ${sources} patches: ${seen.length}`);
    assert.equal(seen.filter((e) => e.verb === 'patch').length, sources);
    // Paced: n requests at q per second after a burst of b cannot end sooner than (n - b) / q seconds.
    const all = seen.length + watches;
    const spanSeconds = (Math.max(...seen.map((e) => Date.parse(e.requestReceivedTimestamp))) - startedAt) / 1000;
    assert.ok(spanSeconds >= (all - burst) / qps, `${all} requests in ${spanSeconds}s`);
    const limiter = await h.metrics.registry.getSingleMetric('rest_client_rate_limiter_duration_seconds')!.get();
    const waited = limiter.values.filter((v) => (v as { metricName?: string }).metricName?.endsWith('_count')).reduce((n, v) => n + v.value, 0);
    assert.ok(waited >= all - burst, `${waited} requests waited for the limiter`);
    t.diagnostic(`${all} requests at --kube-api-qps=${qps} --kube-api-burst=${burst}: the last reached the API server ${spanSeconds.toFixed(1)}s after start`);
  });
});
