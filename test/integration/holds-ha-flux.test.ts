// Holds across leader changes and people, end to end with Flux's source-controller and
// helm-controller at `interval: 20s`: holds survive a SIGKILLed leader (one hold patch across both
// leaders, no attempt over three intervals), a person's resume is an override (a Warning naming the
// field manager; never suspended again for that content), and a hold whose reason goes (the wave
// annotation removed) is lifted by the release's trigger.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { DEMO_INVALID_VALUES, demoHelmRelease, FluxControllers } from '../harness/flux.js';
import { hrtoReleasePatches, isTrigger, onTestControlPlane, ReleaseWatch, ROLLOUT_TIMEOUT, SOURCE, WAVE } from './flux-rollout.js';
import { events, TriggerLog } from './hrto.js';
import { clusterArgs, fastLeaderElection, leaderAndStandby, logLines, waitForLog } from './process.js';
import { createConfigMap, createNamespace, custom, eventually, HR, kc, NAMES, NAMESPACE, patchConfigMap, patchHelmRelease, sleep, waitForRecordedDigest, WATCH_LABEL } from './support.js';

describe('holds under leader changes and people, end to end with Flux', onTestControlPlane, () => {
  let flux: FluxControllers;
  before(async () => {
    flux = new FluxControllers(process.env.HRTO_TEST_KUBECONFIG!, kc);
    await flux.start();
  });
  after(() => flux?.stop());

  it('holds survive a SIGKILLed leader, a person\'s resume is an override, and a hold whose reason goes is lifted', async (t) => {
    const ns = await createNamespace('holds-ha');
    await flux.createRepository(ns);
    const names = ['k1', 'k2', 'k3'];
    await createConfigMap({
      metadata: { name: SOURCE, namespace: ns, labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: names.join(','), [NAMESPACE]: ns } },
      data: { 'values.yaml': 'message: one\n' },
    });
    for (const name of names) {
      await custom.createNamespacedCustomObject({ ...HR, namespace: ns, body: demoHelmRelease(ns, name, { valuesFrom: SOURCE, annotations: { [WAVE]: name === 'k1' ? '1' : '2' }, spec: { interval: '20s' } }) });
    }
    const watch = await ReleaseWatch.start(ns);
    t.after(() => watch.stop());
    await eventually('three releases installed', () => Promise.resolve(names.every((name) => watch.current(name)?.latest?.status === 'deployed')), ROLLOUT_TIMEOUT);
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    const args = clusterArgs(ns, [...fastLeaderElection(ns), '--min-trigger-interval=0s', '--debounce=0s', '--wave-timeout=2m']);
    const { leader, standby } = await leaderAndStandby(t, args);
    await waitForRecordedDigest(ns, SOURCE);
    const before = new Map(names.map((name) => [name, watch.current(name)!]));
    const changed = Date.now();
    await patchConfigMap(ns, SOURCE, { data: { 'values.yaml': `message: bad\n${DEMO_INVALID_VALUES}` } });
    const held = (name: string): boolean => watch.current(name)!.suspend && watch.current(name)!.hold !== undefined;
    try {
      await eventually('k2 and k3 held', () => Promise.resolve(held('k2') && held('k3')), 30_000);
      await eventually('k1 failed', () => Promise.resolve((watch.current('k1')?.failures ?? 0) > 0), ROLLOUT_TIMEOUT);
      leader.kill('SIGKILL');
      await waitForLog(standby, 'the standby to take over', (l) => l.msg === 'became the leader', 60_000);
      await sleep(65_000);
      for (const name of ['k2', 'k3']) {
        assert.ok(held(name), `${name} still held under the new leader`);
        for (const s of (watch.states.get(name) ?? []).filter((x) => x.at >= changed)) {
          assert.equal(s.latest?.version, before.get(name)!.latest?.version, `${name}: no new revision`);
          assert.equal(s.failures, 0, `${name}: no attempt`);
        }
        const writes = hrtoReleasePatches(ns, changed).filter((e) => e.objectRef?.name === name);
        assert.equal(writes.length, 1, `${name}: one hold patch across both leaders, none doubled or dropped: ${JSON.stringify(writes.map((e) => e.requestObject))}`);
        assert.equal(triggers.count(name), 0, `${name}: never triggered`);
      }

      // A person resumes k3: an override, reported, never suspended again for this content.
      const resumed = Date.now();
      await custom.patchNamespacedCustomObject(
        { ...HR, namespace: ns, name: 'k3', body: { spec: { suspend: false } }, fieldManager: 'person-resumes' },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const warning = await eventually('a HoldOverridden Warning', async () => (await events(ns)).find((e) => e.reason === 'HoldOverridden' && e.name === 'k3'));
      assert.equal(warning.type, 'Warning');
      assert.match(warning.message, /person-resumes/, 'names the field manager that lifted the hold');
      await sleep(45_000);
      assert.equal(watch.current('k3')!.suspend, false, 'k3 not suspended again');
      assert.deepEqual(
        hrtoReleasePatches(ns, resumed).filter((e) => e.objectRef?.name === 'k3' && e.requestObject?.spec?.suspend === true),
        [],
        'no suspend patch after the override',
      );
      assert.ok(watch.current('k3')!.failures > 0, 'k3 attempted the held change once resumed (outside its rollout)');
      // What slipped through is reported, and recorded as that wave's result (as if triggered).
      const slipped = await eventually('an UpgradedOutsideRollout Warning', async () => (await events(ns)).find((e) => e.reason === 'UpgradedOutsideRollout' && e.name === 'k3'));
      assert.match(slipped.message, /person-resumes lifted hrto's suspension/);
      await eventually('k3\'s mark gone, its record naming the held content', () => Promise.resolve(watch.current('k3')!.hold === undefined && watch.current('k3')!.rollout !== undefined));
      const record = JSON.parse(watch.current('k3')!.rollout!) as { slip?: boolean; src: Record<string, string>; v: number };
      assert.equal(record.slip, true);
      assert.equal(record.v, before.get('k3')!.latest!.version, 'read from the revision it was held at');
      assert.match(record.src[`ConfigMap/${ns}/${SOURCE}`] ?? '', /^sha256:[0-9a-f]{12}$/);
      assert.equal(triggers.count('k3'), 0, 'k3 was never triggered by hrto');

      // k2's wave annotation removed: nothing orders it any more, so its hold goes at once (its trigger).
      await patchHelmRelease(ns, 'k2', { metadata: { annotations: { [WAVE]: null } } });
      await eventually('k2 released', () => Promise.resolve(!watch.current('k2')!.suspend && watch.current('k2')!.hold === undefined), 30_000);
      const k2 = hrtoReleasePatches(ns, changed).filter((e) => e.objectRef?.name === 'k2');
      assert.equal(k2.length, 2, `k2: its hold, then one patch releasing it: ${JSON.stringify(k2.map((e) => e.requestObject))}`);
      assert.ok(isTrigger(k2[1]!) && k2[1]!.requestObject?.spec?.suspend === false, 'released by its trigger');
      assert.ok(logLines(standby).some((l) => l.msg.startsWith('hrto\'s suspension was lifted by someone else') && l.by === 'person-resumes'));
    } catch (err) {
      for (const name of names) t.diagnostic(`${name}:\n${watch.timeline(name, changed)}`);
      throw err;
    }
  });
});
