// Holds that hold, end to end with Flux's source-controller and helm-controller: the releases run at
// `interval: 20s`, so helm-controller's own reconciles would apply a changed source within 20 s, and
// each hold is watched over at least three intervals. A bad change halts after wave 1 and waves 2, 3
// and a closed window attempt nothing (suspended by hrto); a revert repairs only the canary and
// lifts every hold; a fix rolls through the waves, each released by its trigger's own patch; the
// window opens and its release is upgraded once. Evidence: helm-controller's status as a watch saw
// it, and hrto's patches with their bodies from the API server's audit log.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEMO_INVALID_VALUES, demoHelmRelease, FluxControllers } from '../harness/flux.js';
import { HOLD, hrtoReleasePatches, isTrigger, onTestControlPlane, rendered, ReleaseWatch, ROLLOUT_TIMEOUT, type Seen, SOURCE, triggerPatches, upgradeFailed, WAVE, WINDOWS } from './flux-rollout.js';
import { startHrto, TriggerLog } from './hrto.js';
import { createConfigMap, createNamespace, custom, eventually, HR, kc, NAMES, NAMESPACE, patchConfigMap, patchHelmRelease, sleep, waitForRecordedDigest, WATCH_LABEL } from './support.js';

describe('holds end to end with Flux', onTestControlPlane, () => {
  let flux: FluxControllers;
  before(async () => {
    flux = new FluxControllers(process.env.HRTO_TEST_KUBECONFIG!, kc);
    await flux.start();
  });
  after(() => flux?.stop());

  // Holds that hold: the releases run at `interval: 20s`, so helm-controller's own reconciles would
  // apply a changed source within 20 s; each hold is watched over at least three intervals.
  describe('holds against helm-controller\'s own reconciles (interval: 20s)', () => {
    const HELD_WAVES: readonly (readonly [string, number])[] = [
      ['h1', 1],
      ['h2', 2],
      ['h3', 3],
    ];
    const NIGHTLY = 'nightly';
    const NAMES_H = [...HELD_WAVES.map(([name]) => name), NIGHTLY];
    const CLOSED = JSON.stringify([{ cron: '0 0 1 1 *', timeZone: 'UTC', window: '1m' }]);
    const THREE_INTERVALS = 65_000;
    let ns: string;
    let watch: ReleaseWatch;
    let triggers: TriggerLog;
    let stopHrto: (() => Promise<void>) | undefined;

    before(async () => {
      ns = await createNamespace('holds');
      await flux.createRepository(ns);
      await createConfigMap({
        metadata: { name: SOURCE, namespace: ns, labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: NAMES_H.join(','), [NAMESPACE]: ns } },
        data: { 'values.yaml': 'message: one\n' },
      });
      for (const [name, wave] of HELD_WAVES) {
        await custom.createNamespacedCustomObject({ ...HR, namespace: ns, body: demoHelmRelease(ns, name, { valuesFrom: SOURCE, annotations: { [WAVE]: String(wave) }, spec: { interval: '20s' } }) });
      }
      await custom.createNamespacedCustomObject({ ...HR, namespace: ns, body: demoHelmRelease(ns, NIGHTLY, { valuesFrom: SOURCE, annotations: { [WINDOWS]: CLOSED }, spec: { interval: '20s' } }) });
      watch = await ReleaseWatch.start(ns);
      await eventually('four releases installed', () => Promise.resolve(NAMES_H.every((name) => watch.current(name)?.latest?.status === 'deployed')), ROLLOUT_TIMEOUT);
      triggers = await TriggerLog.start(ns);
      const h = await startHrto({ watchNamespaces: ns, debounce: '0s', waveTimeout: '2m' });
      stopHrto = () => h.stop();
      await waitForRecordedDigest(ns, SOURCE);
    });
    after(async () => {
      await stopHrto?.();
      await triggers?.stop();
      await watch?.stop();
    });

    /** Nothing helm-controller did to the release since `since`: no new revision, failure or attempted values. */
    function untouched(name: string, since: number, before: Seen): void {
      for (const s of (watch.states.get(name) ?? []).filter((x) => x.at >= since)) {
        assert.equal(s.latest?.version, before.latest?.version, `${name}: no new revision`);
        assert.equal(s.failures, before.failures, `${name}: no failed attempt`);
        assert.equal(s.lastAttemptedConfigDigest, before.lastAttemptedConfigDigest, `${name}: no attempt with other values`);
      }
    }

    const heldByHrto = (name: string): boolean => {
      const s = watch.current(name);
      return s !== undefined && s.suspend && s.hold !== undefined && (JSON.parse(s.hold) as { by?: string }).by === 'helmrelease-trigger-operator';
    };

    /** hrto's hold patches (spec.suspend) of a release since `since`: [suspend, value] in order. */
    const holdPatches = (name: string, since: number): boolean[] =>
      hrtoReleasePatches(ns, since)
        .filter((e) => e.objectRef?.name === name && typeof e.requestObject?.spec?.suspend === 'boolean')
        .sort((a, b) => a.requestReceivedTimestamp.localeCompare(b.requestReceivedTimestamp))
        .map((e) => e.requestObject!.spec!.suspend!);

    it('a bad change fails wave 1 and halts; waves 2 and 3 and a closed window attempt nothing over three intervals', async (t) => {
      const before = new Map(NAMES_H.map((name) => [name, watch.current(name)!]));
      const counts = new Map(NAMES_H.map((name) => [name, triggers.count(name)]));
      const changed = Date.now();
      await patchConfigMap(ns, SOURCE, { data: { 'values.yaml': `message: bad\n${DEMO_INVALID_VALUES}` } });
      try {
        const held = ['h2', 'h3', NIGHTLY];
        await eventually('h2, h3 and nightly suspended by hrto', () => Promise.resolve(held.every(heldByHrto)), 30_000);
        t.diagnostic(`suspended +${Math.max(...held.map((n) => watch.first(n, changed, (s) => s.suspend)!.at)) - changed} ms after the change`);
        await eventually('h1 triggered and failed', () => Promise.resolve(watch.first('h1', changed, (s) => upgradeFailed(s, { version: before.get('h1')!.latest!.version, failures: before.get('h1')!.failures, requestedAt: before.get('h1')!.requestedAt }))), ROLLOUT_TIMEOUT);
        await sleep(THREE_INTERVALS);
        for (const name of held) {
          untouched(name, changed, before.get(name)!);
          assert.equal(triggers.count(name), counts.get(name), `${name}: not triggered`);
          assert.ok(heldByHrto(name), `${name}: still held`);
          assert.deepEqual(holdPatches(name, changed), [true], `${name}: one hold patch`);
        }
        const mark = JSON.parse(watch.current(NIGHTLY)!.hold!) as { reason: string; src: Record<string, string> };
        assert.equal(mark.reason, 'window');
        assert.match(mark.src[`ConfigMap/${ns}/${SOURCE}`] ?? '', /^sha256:[0-9a-f]{12}$/);
        // h1 keeps failing on its own retries: it is the canary, not held.
        assert.ok(watch.current('h1')!.failures > 0);
      } catch (err) {
        for (const name of NAMES_H) t.diagnostic(`${name}:\n${watch.timeline(name, changed)}`);
        throw err;
      }
    });

    it('a revert to the content last rolled out repairs the canary and touches no other release; the holds are lifted', async (t) => {
      const counts = new Map(NAMES_H.map((name) => [name, triggers.count(name)]));
      const changed = Date.now();
      await patchConfigMap(ns, SOURCE, { data: { 'values.yaml': 'message: one\n' } });
      try {
        const base = { version: 0, failures: 0, requestedAt: watch.current('h1')!.requestedAt };
        base.version = watch.current('h1')!.latest!.version;
        await eventually('h1 repaired', () => Promise.resolve(watch.first('h1', changed, (s) => s.requestedAt !== base.requestedAt && s.lastHandledReconcileAt === s.requestedAt && s.ready?.status === 'True')), ROLLOUT_TIMEOUT);
        await eventually('every hold lifted', () => Promise.resolve(NAMES_H.every((name) => !watch.current(name)!.suspend && watch.current(name)!.hold === undefined)), 30_000);
        await sleep(5_000);
        assert.equal(triggers.count('h1'), counts.get('h1')! + 1, 'h1 triggered once, back to the good content');
        for (const name of ['h2', 'h3', NIGHTLY]) {
          assert.equal(triggers.count(name), counts.get(name), `${name}: not triggered (it never had the bad content)`);
          assert.deepEqual(holdPatches(name, changed), [false], `${name}: its hold lifted in one patch`);
        }
        assert.equal(await rendered(ns, 'h1'), 'one');
      } catch (err) {
        for (const name of NAMES_H) t.diagnostic(`${name}:\n${watch.timeline(name, changed)}`);
        throw err;
      }
    });

    it('a good change rolls through the waves, each released by its trigger; the windowed release is held until its window opens, then upgraded once', async (t) => {
      const counts = new Map(NAMES_H.map((name) => [name, triggers.count(name)]));
      const before = watch.current(NIGHTLY)!;
      const changed = Date.now();
      await patchConfigMap(ns, SOURCE, { data: { 'values.yaml': 'message: fixed\n' } });
      try {
        for (const [name] of HELD_WAVES) {
          await eventually(`${name} renders the fix`, async () => (await rendered(ns, name)) === 'fixed', ROLLOUT_TIMEOUT);
        }
        await eventually('the waves released', () => Promise.resolve(HELD_WAVES.every(([name]) => !watch.current(name)!.suspend && watch.current(name)!.hold === undefined)), 30_000);
        for (const [name, wave] of HELD_WAVES) {
          assert.equal(triggers.count(name), counts.get(name)! + 1, `${name}: triggered once`);
          const patches = hrtoReleasePatches(ns, changed).filter((e) => e.objectRef?.name === name);
          if (wave > 1) {
            // Held when the change was seen, released by the trigger's own patch: two writes in all.
            assert.equal(patches.length, 2, `${name}: a hold and its trigger (${JSON.stringify(patches.map((e) => e.requestObject))})`);
            assert.equal(patches[0]!.requestObject?.spec?.suspend, true);
            assert.ok(isTrigger(patches[1]!) && patches[1]!.requestObject?.spec?.suspend === false, `${name}: the trigger resumes it`);
            assert.equal(patches[1]!.requestObject?.metadata?.annotations?.[HOLD], null, `${name}: the trigger removes the mark`);
          } else {
            assert.equal(patches.length, 1, `${name}: the canary is only triggered`);
          }
        }
        // The window opens 25 s from now (a cron with seconds), for 5 minutes: more than one interval away.
        const opens = new Date(Math.ceil((Date.now() + 25_000) / 1000) * 1000);
        const cron = `${opens.getUTCSeconds()} ${opens.getUTCMinutes()} ${opens.getUTCHours()} * * *`;
        await patchHelmRelease(ns, NIGHTLY, { metadata: { annotations: { [WINDOWS]: JSON.stringify([{ cron, timeZone: 'UTC', window: '5m' }]) } } });
        const waiting = Date.now();
        await sleep(Math.max(0, opens.getTime() - Date.now() - 1_000));
        assert.ok(heldByHrto(NIGHTLY), 'nightly held until its window opens');
        untouched(NIGHTLY, changed, before);
        assert.equal(triggers.count(NIGHTLY), counts.get(NIGHTLY), 'nightly not triggered while its window is closed');
        t.diagnostic(`nightly held ${Math.round((Date.now() - changed) / 1000)} s (${Math.round((Date.now() - waiting) / 1000)} s after the window moved)`);
        await eventually('nightly renders the fix once its window opens', async () => (await rendered(ns, NIGHTLY)) === 'fixed', 60_000);
        await eventually('nightly released', () => Promise.resolve(!watch.current(NIGHTLY)!.suspend && watch.current(NIGHTLY)!.hold === undefined), 30_000);
        await sleep(25_000); // one more interval: no second upgrade
        assert.equal(triggers.count(NIGHTLY), counts.get(NIGHTLY)! + 1, 'nightly triggered once');
        const after = watch.current(NIGHTLY)!;
        assert.equal(after.latest?.version, before.latest!.version + 1, 'nightly upgraded exactly once');
        const opened = triggerPatches(ns, changed).get(NIGHTLY)![0]!;
        assert.ok(Date.parse(opened) >= opens.getTime(), `triggered at ${opened}, once the window opened at ${opens.toISOString()}`);
      } catch (err) {
        for (const name of NAMES_H) t.diagnostic(`${name}:\n${watch.timeline(name, changed)}`);
        throw err;
      }
    });
  });
});
