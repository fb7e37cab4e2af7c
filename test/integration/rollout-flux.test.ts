// Safe config rollouts (issue 19) end to end with Flux's own source-controller, helm-controller and
// notification-controller: six HelmReleases in three waves read one labeled ConfigMap through
// valuesFrom. A good change reaches wave n+1 only after every release of wave n upgraded to a new
// revision and reports it Ready; a change the chart's values schema rejects fails wave 1 and halts
// the rollout (waves 2 and 3 are never patched, RolloutHalted is reported as an Event and through an
// Alert); a fixed change then rolls out through all three waves; and a standby that takes over after
// the leader is SIGKILLed between waves carries the rollout on, patching no release twice.
// The order is read from the API server's audit log (when each trigger patch was received) against
// the helm-controller status write the watch saw the new revision Ready in.
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { DEMO_INVALID_VALUES, demoHelmRelease, FluxControllers, type FluxEventBody } from '../harness/flux.js';
import { type Webhook, webhook } from '../harness/webhook.js';
import { ALL, baselines, firstPatchOf, NAMES_OF, rendered, ReleaseWatch, RELEASES, ROLLOUT, ROLLOUT_TIMEOUT, SETTLE_MS, SOURCE, statusWrittenAt, triggerPatches, upgradedAndReady, upgradeFailed, WAVE, onTestControlPlane } from './flux-rollout.js';
import { events, type EventSummary, startHrto, TriggerLog } from './hrto.js';
import { clusterArgs, fastLeaderElection, leaderAndStandby, logLines, type Run, waitForLog } from './process.js';
import { createConfigMap, createNamespace, custom, eventually, HR, kc, NAMES, NAMESPACE, patchConfigMap, sleep, waitForRecordedDigest, WATCH_LABEL } from './support.js';

/** The labeled ConfigMap naming all six releases, the six releases in their waves, all installed. */
async function sixReleases(ns: string, flux: FluxControllers): Promise<void> {
  await flux.createRepository(ns);
  await createConfigMap({
    metadata: { name: SOURCE, namespace: ns, labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: ALL.join(','), [NAMESPACE]: ns } },
    data: { 'values.yaml': 'message: one\n' },
  });
  for (const [name, wave] of RELEASES) {
    await custom.createNamespacedCustomObject({ ...HR, namespace: ns, body: demoHelmRelease(ns, name, { valuesFrom: SOURCE, annotations: { [WAVE]: String(wave) } }) });
  }
  await eventually(
    'six releases installed',
    async () => {
      for (const name of ALL) {
        const hr = (await custom.getNamespacedCustomObject({ ...HR, namespace: ns, name })) as { status?: { history?: { version: number; status: string }[] } };
        const latest = hr.status?.history?.[0];
        if (latest?.version !== 1 || latest.status !== 'deployed') return false;
      }
      return true;
    },
    ROLLOUT_TIMEOUT,
  );
}

interface Rollout {
  /** When the watch saw each release's new revision Ready, and the status write that made it so. */
  ready: Map<string, { watchedAt: number; writtenAt: string; requestedAt: string }>;
  /** hrto's trigger patches since the change, by release. */
  patches: Map<string, string[]>;
}

/**
 * Changes the source and waits for all six releases to be upgraded and Ready; then checks from the
 * audit log that no release of wave n+1 was patched before every release of wave n was Ready.
 */
async function goodChange(t: TestContext, ns: string, watch: ReleaseWatch, values: string): Promise<Rollout> {
  const base = baselines(watch);
  const changed = Date.now();
  await patchConfigMap(ns, SOURCE, { data: { 'values.yaml': values } });
  const ready = new Map<string, { watchedAt: number; writtenAt: string; requestedAt: string }>();
  try {
    for (const name of ALL) {
      const s = await eventually(`${name} upgraded and Ready`, () => Promise.resolve(watch.first(name, changed, (x) => upgradedAndReady(x, base.get(name)!))), ROLLOUT_TIMEOUT);
      ready.set(name, { watchedAt: s.at, writtenAt: statusWrittenAt(ns, name, s.at), requestedAt: s.requestedAt! });
    }
  } catch (err) {
    for (const name of ALL) t.diagnostic(`${name}:\n${watch.timeline(name, changed)}`);
    throw err;
  }
  const patches = triggerPatches(ns, changed);
  t.diagnostic(
    `rollout: ${ALL.map((name) => `${name} patched ${patches.get(name)?.[0]?.slice(11) ?? '-'}, Ready written ${ready.get(name)!.writtenAt.slice(11)} (seen +${ready.get(name)!.watchedAt - changed} ms)`).join('; ')}`,
  );
  for (const wave of [2, 3]) {
    const firstPatch = firstPatchOf(patches, wave);
    for (const earlier of NAMES_OF(wave - 1)) {
      const r = ready.get(earlier)!;
      assert.ok(
        firstPatch > r.writtenAt,
        `the first patch of wave ${wave} (${firstPatch}) came after ${earlier} of wave ${wave - 1} reported its new revision Ready (${r.writtenAt})`,
      );
    }
  }
  for (const name of ALL) {
    assert.equal(patches.get(name)?.length, 1, `${name} patched once for the change`);
  }
  for (const name of ALL) {
    const base0 = base.get(name)!;
    const record = watch.current(name)?.rollout;
    assert.ok(record, `${name} carries the ${ROLLOUT} record of its trigger`);
    const parsed = JSON.parse(record) as { at?: string; v?: number; f?: number; force?: boolean; src?: Record<string, string> };
    assert.equal(parsed.at, ready.get(name)!.requestedAt, `${name}: the record is of the trigger that upgraded it`);
    // (After a failed change helm-controller's own retries may have upgraded once more before the trigger.)
    assert.ok(typeof parsed.v === 'number' && parsed.v >= base0.version && parsed.v < watch.current(name)!.latest!.version, `${name}: the record holds the newest revision before the trigger (${parsed.v})`);
    // helm-controller may count one more retry of a failed release between the baseline and the trigger.
    assert.ok(typeof parsed.f === 'number' && parsed.f >= base0.failures, `${name}: the record holds the failures before the trigger (${parsed.f})`);
    assert.equal(parsed.force, true);
    assert.match(parsed.src?.[`ConfigMap/${ns}/${SOURCE}`] ?? '', /^sha256:[0-9a-f]{12}$/);
  }
  return { ready, patches };
}

// --- the tests -----------------------------------------------------------------------------------

function halted(list: EventSummary[], kind: string, names: readonly string[]): EventSummary | undefined {
  return list.find((e) => e.reason === 'RolloutHalted' && e.kind === kind && names.includes(e.name));
}

describe('safe rollouts end to end with Flux', onTestControlPlane, () => {
  let flux: FluxControllers;
  before(async () => {
    flux = new FluxControllers(process.env.HRTO_TEST_KUBECONFIG!, kc);
    await flux.start({ notifications: true });
  });
  after(() => flux?.stop());

  describe('three waves of two releases, one source', () => {
    let ns: string;
    let watch: ReleaseWatch;
    let triggers: TriggerLog;
    let hook: Webhook<FluxEventBody>;
    let stopHrto: (() => Promise<void>) | undefined;
    before(async () => {
      ns = await createNamespace('rollout');
      hook = await webhook<FluxEventBody>();
      await flux.alertTo(ns, hook.url);
      await sixReleases(ns, flux);
      watch = await ReleaseWatch.start(ns);
      triggers = await TriggerLog.start(ns);
      const h = await startHrto({ watchNamespaces: ns, debounce: '0s', waveTimeout: '2m', eventsAddr: flux.eventsAddress });
      stopHrto = () => h.stop();
      await waitForRecordedDigest(ns, SOURCE); // adopted: every release already has this content
    });
    after(async () => {
      await stopHrto?.();
      await triggers?.stop();
      await watch?.stop();
      await hook?.close();
    });

    it('a good change rolls out wave by wave: no wave is patched before the one before it reports the new revision Ready', async (t) => {
      await goodChange(t, ns, watch, 'message: two\n');
      for (const name of ALL) assert.equal(await rendered(ns, name), 'two', `${name} renders the new values`);
    });

    it('a change the chart rejects fails wave 1 and halts: waves 2 and 3 are never patched, RolloutHalted is reported', async (t) => {
      const base = baselines(watch);
      const triggersBefore = new Map(ALL.map((name) => [name, triggers.count(name)]));
      const changed = Date.now();
      await patchConfigMap(ns, SOURCE, { data: { 'values.yaml': `message: bad\n${DEMO_INVALID_VALUES}` } });
      try {
        for (const name of NAMES_OF(1)) {
          await eventually(`${name} triggered and failed`, () => Promise.resolve(watch.first(name, changed, (s) => upgradeFailed(s, base.get(name)!))), ROLLOUT_TIMEOUT);
        }
        const early = triggerPatches(ns, changed);
        for (const name of [...NAMES_OF(2), ...NAMES_OF(3)]) {
          assert.equal(early.get(name), undefined, `${name} not patched while wave 1 upgrades and fails: ${JSON.stringify(early.get(name))}`);
        }
        // Within the wave timeout (2m) at the latest, though the failure is read at once.
        await eventually('RolloutHalted on the source', async () => halted(await events(ns), 'ConfigMap', [SOURCE]), ROLLOUT_TIMEOUT);
      } catch (err) {
        for (const name of ALL) t.diagnostic(`${name}:\n${watch.timeline(name, changed)}`);
        throw err;
      }
      const haltedAt = Date.now();
      await sleep(SETTLE_MS);

      const list = await events(ns);
      const onSource = halted(list, 'ConfigMap', [SOURCE])!;
      assert.equal(onSource.type, 'Warning');
      assert.ok(NAMES_OF(1).some((name) => onSource.message.includes(name)), `the source's Event names the failed release: ${onSource.message}`);
      assert.ok(onSource.message.includes('values.yaml'), `the source's Event names the changed key: ${onSource.message}`);
      const onRelease = halted(list, 'HelmRelease', NAMES_OF(1));
      assert.ok(onRelease, `RolloutHalted on a failed release of wave 1; events: ${JSON.stringify(list.filter((e) => e.reason === 'RolloutHalted'))}`);
      assert.equal(onRelease.type, 'Warning');
      assert.ok(onRelease.message.includes('values.yaml'), onRelease.message);

      const patches = triggerPatches(ns, changed);
      for (const name of NAMES_OF(1)) assert.equal(patches.get(name)?.length, 1, `${name} of wave 1 was triggered once`);
      for (const name of [...NAMES_OF(2), ...NAMES_OF(3)]) {
        assert.equal(patches.get(name), undefined, `${name} never patched, ${SETTLE_MS / 1000}s after the rollout halted: ${JSON.stringify(patches.get(name))}`);
        assert.equal(triggers.count(name), triggersBefore.get(name), `${name} has no new reconcile request`);
        const now = watch.current(name)!;
        assert.equal(now.latest?.version, base.get(name)!.version, `${name} still at its revision`);
        assert.equal(now.ready?.status, 'True', `${name} still Ready with the last good values`);
      }
      assert.ok(Date.now() - haltedAt >= SETTLE_MS);

      // Through notification-controller: the Alert on HelmReleases posts hrto's Warning.
      const fromHrto = await eventually('the webhook to receive RolloutHalted', () =>
        Promise.resolve(hook.bodies.find((e) => e.reportingController === 'helmrelease-trigger-operator' && e.reason === 'RolloutHalted')),
      );
      assert.equal(fromHrto.involvedObject.kind, 'HelmRelease');
      assert.equal(fromHrto.involvedObject.namespace, ns);
      assert.ok(NAMES_OF(1).includes(fromHrto.involvedObject.name), `about a release of wave 1: ${fromHrto.involvedObject.name}`);
      assert.equal(fromHrto.severity, 'error');
      assert.ok(fromHrto.message.includes(fromHrto.involvedObject.name), `names the failed release: ${fromHrto.message}`);
      assert.match(fromHrto.message, /UpgradeFailed/, 'names the reason');
      assert.ok(fromHrto.message.includes('values.yaml'), `names the changed key: ${fromHrto.message}`);
      t.diagnostic(`received from hrto: ${JSON.stringify(fromHrto)}`);
    });

    it('a fixed change then rolls out through all three waves', async (t) => {
      await goodChange(t, ns, watch, 'message: fixed\n');
      for (const name of ALL) assert.equal(await rendered(ns, name), 'fixed', `${name} renders the fixed values`);
    });
  });

  it('leader SIGKILLed between waves: the standby triggers wave 2 only after wave 1 is healthy, then wave 3, and patches no release twice', async (t) => {
    const ns = await createNamespace('rollout-ha');
    await sixReleases(ns, flux);
    const watch = await ReleaseWatch.start(ns);
    t.after(() => watch.stop());
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    const args = clusterArgs(ns, [...fastLeaderElection(ns), '--min-trigger-interval=0s', '--debounce=0s', '--wave-timeout=2m']);
    const { leader, standby } = await leaderAndStandby(t, args);
    await waitForRecordedDigest(ns, SOURCE);
    const base = baselines(watch);
    const counts = new Map(ALL.map((name) => [name, triggers.count(name)]));
    const changed = Date.now();
    await patchConfigMap(ns, SOURCE, { data: { 'values.yaml': 'message: two\n' } });

    // Both of wave 1 patched by the leader: kill it there, before it can see them healthy.
    for (const name of NAMES_OF(1)) await triggers.waitFor(name, counts.get(name)! + 1, 60_000);
    leader.kill('SIGKILL');
    const killed = Date.now();
    for (const name of [...NAMES_OF(2), ...NAMES_OF(3)]) {
      assert.equal(triggers.count(name), counts.get(name), `${name} not triggered before the leader was killed (wave 1 cannot be healthy yet)`);
    }
    await waitForLog(standby, 'the standby to take over', (l) => l.msg === 'became the leader', 60_000);

    const ready = new Map<string, string>();
    try {
      for (const name of ALL) {
        const s = await eventually(`${name} upgraded and Ready`, () => Promise.resolve(watch.first(name, changed, (x) => upgradedAndReady(x, base.get(name)!))), ROLLOUT_TIMEOUT);
        ready.set(name, statusWrittenAt(ns, name, s.at));
      }
    } catch (err) {
      for (const name of ALL) t.diagnostic(`${name}:\n${watch.timeline(name, changed)}`);
      throw err;
    }
    await sleep(2000); // a second trigger of any release would land by now

    const patches = triggerPatches(ns, changed);
    for (const wave of [2, 3]) {
      const firstPatch = firstPatchOf(patches, wave);
      assert.ok(Date.parse(firstPatch) > killed, `wave ${wave} patched by the new leader, after the kill`);
      for (const earlier of NAMES_OF(wave - 1)) {
        assert.ok(firstPatch > ready.get(earlier)!, `the first patch of wave ${wave} (${firstPatch}) came after ${earlier} reported Ready (${ready.get(earlier)})`);
      }
    }
    for (const name of ALL) {
      const requests = (triggers.requests.get(name) ?? []).slice(counts.get(name));
      assert.equal(requests.length, 1, `${name}: one reconcile request for the change, got ${JSON.stringify(requests)}`);
    }
    const triggeredBy = (run: Run, name: string): boolean => logLines(run).some((l) => l.msg.startsWith('triggered HelmRelease') && l.target === `${ns}/${name}`);
    // (The first leader may be killed between its patch landing and its log line: the single request
    // per release above and the new leader's silence about wave 1 are what say it was not repeated.)
    for (const name of NAMES_OF(1)) assert.ok(!triggeredBy(standby, name), `${name} not triggered again by the new leader`);
    for (const name of [...NAMES_OF(2), ...NAMES_OF(3)]) assert.ok(triggeredBy(standby, name) && !triggeredBy(leader, name), `${name} triggered by the new leader only`);
    t.diagnostic(`killed +${killed - changed} ms; patches: ${JSON.stringify(Object.fromEntries(patches))}`);
  });
});
