// Rings across clusters, end to end in Flux's hub and spoke: one shared ConfigMap in the hub with a
// rollout plan of three steps (a canary ring on the spoke, ring a across the spoke and the hub, ring
// b of three with maxUpdate 1), six HelmReleases at `interval: 10s` reconciled by the hub's real
// helm-controller. A good change reaches each ring only after the previous one is healthy and has
// baked, ring b goes one release at a time, and the rings waiting meanwhile are held (suspended) so
// that helm-controller's own reconciles do not apply it either. Evidence: the API server's audit log
// (hrto's patches against helm-controller's status writes) and helm-controller's status as watched.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { resolveConfig } from '../../src/config.js';
import { formatSteps, runExplain } from '../../src/explain.js';
import { createLogger } from '../../src/log.js';
import { FluxControllers } from '../harness/flux.js';
import { hrtoReleasePatches, isTrigger, onTestControlPlane, statusWrittenAt, triggerPatches } from './flux-rollout.js';
import { startHrto } from './hrto.js';
import { HubAndSpoke, MEMBERS, PLATFORM, RING } from './rings.js';
import { api, eventually, kc, patchConfigMap, waitForRecordedDigest } from './support.js';

const BAKE_CANARY = 20_000;
const BAKE_A = 10_000;
const PLAN = {
  steps: [
    { name: 'canary', selector: 'ring=canary', bake: '20s' },
    { name: 'ring-a', selector: 'ring=a', bake: '10s' },
    { name: 'ring-b', selector: 'ring=b', maxUpdate: 1 },
  ],
};

describe('rings across clusters end to end with Flux (hub and spoke)', onTestControlPlane, () => {
  let flux: FluxControllers;
  let hub: HubAndSpoke;
  let hrto: Awaited<ReturnType<typeof startHrto>> | undefined;

  before(async () => {
    flux = new FluxControllers(process.env.HRTO_TEST_KUBECONFIG!, kc);
    await flux.start();
    hub = await HubAndSpoke.start(flux, PLAN, '10s');
    hrto = await startHrto({ watchNamespaces: hub.ns, debounce: '0s', waveTimeout: '2m' });
    await waitForRecordedDigest(hub.ns, PLATFORM);
  });
  after(async () => {
    await hrto?.stop();
    await hub?.stop();
    await flux?.stop();
  });

  it('a good change reaches each ring after the previous ring is healthy and baked; maxUpdate 1 takes ring b one at a time; waiting rings are held', async (t) => {
    const { ns, watch } = hub;
    const before = new Map(MEMBERS.map((m) => [m.name, hub.current(m.name)]));
    const changed = Date.now();
    await patchConfigMap(ns, PLATFORM, { data: { 'values.yaml': 'message: two\n' } });
    try {
      const upgraded = (name: string) => watch.first(name, changed, (s) => (s.latest?.version ?? 0) > before.get(name)!.latest!.version && s.latest?.status === 'deployed' && s.ready?.status === 'True' && s.ready.observedGeneration === s.generation);

      // While the canary bakes, explain shows where every ring stands, cluster by cluster.
      await eventually('the canary upgraded and healthy', () => Promise.resolve(upgraded('edge')), 60_000);
      const config = resolveConfig({ watchNamespaces: ns });
      const steps = formatSteps(await runExplain(config, api, createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })), { namespace: ns }));
      t.diagnostic(steps);
      assert.match(steps, new RegExp(`step canary \\(ring=canary, bake 20s\\)\\n    cluster spoke-a:\\n      ${ns}/edge: triggered for this content at \\S+; upgraded and healthy, baking until `));
      assert.match(steps, /step ring-a \(ring=a, bake 10s\)\n {4}cluster local:\n {6}\S+\/a-hub: waiting for step canary to bake until \S+: \S+\/edge\n {4}cluster spoke-b:/);
      assert.match(steps, /step ring-b \(ring=b, maxUpdate 1\)/);

      await eventually('every ring upgraded', () => Promise.resolve(MEMBERS.every((m) => upgraded(m.name))), 150_000);
      for (const m of MEMBERS) assert.equal(await hub.rendered(m.name), 'two', `${m.name} rendered the new values ${m.cluster ? `in the spoke (${m.cluster})` : 'in the hub'}`);
      // A release whose own reconcile was under way when the change was written took it before its
      // hold (reported, and counted as its result): the order is asserted of the others.
      const raced = await hub.raced(changed);
      if (raced.size > 0) t.diagnostic(`reconciling when the change was written, reported UpgradedOutsideRollout: ${[...raced].join(', ')}`);
      const ordered = (names: string[]) => names.filter((name) => !raced.has(name));

      const patches = triggerPatches(ns, changed);
      for (const name of ordered(MEMBERS.map((m) => m.name))) assert.equal(patches.get(name)?.length, 1, `${name}: triggered once`);
      const triggeredAt = (name: string): string => patches.get(name)![0]!;
      const readyWrite = (name: string): string => statusWrittenAt(ns, name, upgraded(name)!.at);
      const deployedAt = (name: string): number => Date.parse(upgraded(name)!.latest!.lastDeployed!);

      // Each ring after the previous one is healthy (its Ready status write) and has baked (from Helm's deployment).
      const order: [string[], string[], number][] = [
        [ordered(RING('canary')), ordered(RING('a')), BAKE_CANARY],
        [ordered(RING('a')), ordered(RING('b')), BAKE_A],
      ];
      for (const [lower, upper, bake] of order) {
        if (lower.length === 0 || upper.length === 0) continue;
        const first = upper.map(triggeredAt).sort()[0]!;
        for (const name of lower) {
          assert.ok(readyWrite(name) < first, `${name} was Ready (${readyWrite(name)}) before the next ring's first trigger (${first})`);
          assert.ok(Date.parse(first) >= deployedAt(name) + bake, `${name} deployed at ${upgraded(name)!.latest!.lastDeployed}, baked ${bake} ms before the next ring (${first})`);
        }
        t.diagnostic(`${upper.join(',')}: first trigger ${Date.parse(first) - Math.max(...lower.map(deployedAt))} ms after the last deployment of ${lower.join(',')}`);
      }

      // maxUpdate 1: ring b in name order, each trigger after the previous release was Ready.
      const ringB = ordered(RING('b'));
      assert.deepEqual([...ringB].sort((a, b) => triggeredAt(a).localeCompare(triggeredAt(b))), ringB);
      for (let i = 1; i < ringB.length; i++) {
        assert.ok(readyWrite(ringB[i - 1]!) < triggeredAt(ringB[i]!), `${ringB[i]} triggered (${triggeredAt(ringB[i]!)}) after ${ringB[i - 1]} was Ready (${readyWrite(ringB[i - 1]!)})`);
      }

      // Held meanwhile: every later release was suspended by hrto, and nothing of it was upgraded before its trigger.
      for (const name of ordered([...RING('a'), ...RING('b')])) {
        assert.ok(watch.first(name, changed, (s) => s.suspend && s.hold !== undefined), `${name} was held`);
        const firstNew = watch.first(name, changed, (s) => (s.latest?.version ?? 0) > before.get(name)!.latest!.version)!;
        assert.ok(firstNew.at >= Date.parse(triggeredAt(name)), `${name}: no new revision before its trigger`);
        assert.ok(!hub.current(name).suspend && hub.current(name).hold === undefined, `${name}: released`);
      }
      // A hold is one patch, and the trigger releases it: no other write of hrto's to these releases.
      const writes = hrtoReleasePatches(ns, changed);
      for (const name of ordered([...RING('a'), ...RING('b')])) {
        const mine = writes.filter((e) => e.objectRef?.name === name);
        assert.deepEqual(mine.map((e) => (isTrigger(e) ? 'trigger' : `suspend=${String(e.requestObject?.spec?.suspend)}`)), ['suspend=true', 'trigger'], name);
      }
    } catch (err) {
      t.diagnostic(hub.timelines(changed));
      t.diagnostic(hrto!.logs.filter((l) => l.level >= 30).map((l) => JSON.stringify(l)).join('\n'));
      throw err;
    }
  });
});
