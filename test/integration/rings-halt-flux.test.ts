// Rings across clusters that halt, end to end in Flux's hub and spoke (see rings.ts): a bad change
// fails the canary ring on the spoke, and the other rings, held, never attempt it over several of
// their intervals (`interval: 10s`); a canary that turns Ready=False during its bake halts the
// rollout too, and the bake is read from the objects, so a new hrto process started during the bake
// halts it as the first would have.
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { DEMO_INVALID_VALUES, FluxControllers } from '../harness/flux.js';
import { onTestControlPlane, type Seen, upgradeFailed } from './flux-rollout.js';
import { events, startHrto, TriggerLog } from './hrto.js';
import { HubAndSpoke, MEMBERS, PLATFORM, RING } from './rings.js';
import { eventually, kc, patchConfigMap, sleep, waitForRecordedDigest } from './support.js';

const PLAN = {
  steps: [
    { name: 'canary', selector: 'ring=canary', bake: '40s' },
    { name: 'ring-a', selector: 'ring=a' },
    { name: 'ring-b', selector: 'ring=b' },
  ],
};
const LATER = [...RING('a'), ...RING('b')];
/** Three of the releases' intervals, and a little more. */
const THREE_INTERVALS = 35_000;

describe('rings across clusters that halt, end to end with Flux (hub and spoke)', onTestControlPlane, () => {
  let flux: FluxControllers;
  let hub: HubAndSpoke;
  let triggers: TriggerLog;
  let hrto: Awaited<ReturnType<typeof startHrto>> | undefined;
  const start = async () => {
    hrto = await startHrto({ watchNamespaces: hub.ns, debounce: '0s', waveTimeout: '2m' });
  };

  before(async () => {
    flux = new FluxControllers(process.env.HRTO_TEST_KUBECONFIG!, kc);
    await flux.start();
    hub = await HubAndSpoke.start(flux, PLAN, '10s');
    triggers = await TriggerLog.start(hub.ns);
    await start();
    await waitForRecordedDigest(hub.ns, PLATFORM);
  });
  after(async () => {
    await hrto?.stop();
    await triggers?.stop();
    await hub?.stop();
    await flux?.stop();
  });

  /** Nothing helm-controller did to these releases since `since`: no new revision, failure or attempted values. */
  function untouched(names: readonly string[], since: number, before: ReadonlyMap<string, Seen>): void {
    for (const name of names) {
      for (const s of (hub.watch.states.get(name) ?? []).filter((x) => x.at >= since)) {
        assert.equal(s.latest?.version, before.get(name)!.latest?.version, `${name}: no new revision`);
        assert.equal(s.failures, before.get(name)!.failures, `${name}: no failed attempt`);
        assert.equal(s.lastAttemptedConfigDigest, before.get(name)!.lastAttemptedConfigDigest, `${name}: no attempt with other values`);
      }
      assert.ok(hub.heldByHrto(name), `${name}: held by hrto`);
    }
  }

  /**
   * The later rings held through the change since `changed`: untouched by helm-controller and not
   * triggered, but for a release hrto reported as upgraded by a reconcile already under way when
   * the change was written (rings.ts, raced). Returns the releases held.
   */
  async function heldThrough(t: TestContext, changed: number, before: ReadonlyMap<string, Seen>, triggered: ReadonlyMap<string, number>): Promise<string[]> {
    const raced = await hub.raced(changed);
    if (raced.size > 0) t.diagnostic(`reconciling when the change was written, reported UpgradedOutsideRollout: ${[...raced].join(', ')}`);
    const held = LATER.filter((name) => !raced.has(name));
    untouched(held, changed, before);
    for (const name of held) assert.equal(triggers.count(name), triggered.get(name), `${name}: not triggered`);
    return held;
  }

  const snapshot = () => new Map(MEMBERS.map((m) => [m.name, hub.current(m.name)]));
  const counts = () => new Map(MEMBERS.map((m) => [m.name, triggers.count(m.name)]));

  it('a bad change fails the canary ring on the spoke and halts: the other rings never attempt it over three intervals', async (t) => {
    const before = snapshot();
    const triggered = counts();
    const changed = Date.now();
    await patchConfigMap(hub.ns, PLATFORM, { data: { 'values.yaml': `message: bad\n${DEMO_INVALID_VALUES}` } });
    try {
      const edge = before.get('edge')!;
      await eventually('the canary triggered and failed on the spoke', () => Promise.resolve(hub.watch.first('edge', changed, (s) => upgradeFailed(s, { version: edge.latest!.version, failures: edge.failures, requestedAt: edge.requestedAt }))), 60_000);
      const halted = await eventually('RolloutHalted on the source', async () => (await events(hub.ns)).find((e) => e.reason === 'RolloutHalted' && e.kind === 'ConfigMap'));
      assert.match(halted.message, /halted after step canary: HelmRelease \S+\/edge \(cluster spoke-a\) failed/);
      assert.match(halted.message, /[45] releases? of later steps not triggered/);
      await sleep(THREE_INTERVALS);
      const held = await heldThrough(t, changed, before, triggered);

      // Back to the content the rings have: the canary alone is repaired (and a release that took
      // the bad change by its own reconcile), every hold lifted.
      const reverted = Date.now();
      await patchConfigMap(hub.ns, PLATFORM, { data: { 'values.yaml': 'message: one\n' } });
      await eventually('the canary repaired', () => Promise.resolve(hub.watch.first('edge', reverted, (s) => s.requestedAt !== hub.watch.first('edge', changed, () => true)?.requestedAt && s.lastHandledReconcileAt === s.requestedAt && s.ready?.status === 'True')), 60_000);
      await eventually('every hold lifted', () => Promise.resolve(LATER.every((name) => !hub.current(name).suspend && hub.current(name).hold === undefined)), 30_000);
      for (const name of held) assert.equal(triggers.count(name), triggered.get(name), `${name}: never triggered`);
      assert.equal(await hub.rendered('edge'), 'one');
    } catch (err) {
      t.diagnostic(hub.timelines(changed));
      throw err;
    }
  });

  it('a canary that turns Ready=False during its bake halts the rollout; the bake is read from the objects, across a restart', async (t) => {
    const before = snapshot();
    const triggered = counts();
    const changed = Date.now();
    await patchConfigMap(hub.ns, PLATFORM, { data: { 'values.yaml': 'message: three\n' } });
    try {
      const edge = before.get('edge')!;
      await eventually(
        'the canary upgraded and healthy',
        () => Promise.resolve(hub.watch.first('edge', changed, (s) => (s.latest?.version ?? 0) > edge.latest!.version && s.ready?.status === 'True' && s.ready.observedGeneration === s.generation)),
        60_000,
      );
      // A new process during the bake: nothing of the bake lives in memory.
      await hrto!.stop();
      await start();
      // The spoke now refuses the hub's credentials for cluster spoke-a: the canary's next reconcile fails.
      const breaking = Date.now();
      await hub.setClusterToken('spoke-a', 'not-the-token');
      await hub.requestReconcile('edge');
      const broken = await eventually('the canary Ready=False', () => Promise.resolve(hub.watch.first('edge', breaking, (s) => s.ready?.status === 'False')), 60_000);
      t.diagnostic(`the canary turned Ready=False (${broken.ready!.reason}) ${broken.at - breaking} ms after its credentials broke`);
      const halted = await eventually('RolloutHalted for the bake', async () =>
        (await events(hub.ns)).find((e) => e.reason === 'RolloutHalted' && e.kind === 'ConfigMap' && e.message.includes('during its bake')),
      );
      assert.match(halted.message, /halted after step canary: HelmRelease \S+\/edge \(cluster spoke-a\) failed \(\w+: Ready=False during its bake/);
      // Past the end of the bake and three intervals: the later rings never got the change.
      await sleep(THREE_INTERVALS);
      await heldThrough(t, changed, before, triggered);
      assert.equal(triggers.count('edge'), triggered.get('edge')! + 2, 'the canary: hrto\'s trigger and the test\'s own request');
      t.diagnostic(`edge:\n${hub.watch.timeline('edge', changed)}`);
    } catch (err) {
      t.diagnostic(hub.timelines(changed));
      t.diagnostic(hrto!.logs.filter((l) => l.level >= 30).map((l) => JSON.stringify(l)).join('\n'));
      throw err;
    } finally {
      await hub.setClusterToken('spoke-a');
    }
  });
});
