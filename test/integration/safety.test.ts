// Safety valves: a global throttle that turns a fan-out into a wave, pausing by annotation, resets of
// Stalled releases, and no mass triggers when hrto restarts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { ExplainReport } from '../../src/explain.js';
import { fixture, reconciledSince } from './fixture.js';
import { startHrto, TriggerLog } from './hrto.js';
import { hrto } from './process.js';
import {
  allRecorded,
  auditedWrites,
  createConfigMap,
  createHelmRelease,
  createNamespace,
  custom,
  getHelmRelease,
  HR,
  inBatches,
  labeledConfigMap,
  needsAudit,
  patchConfigMap,
  patchHelmRelease,
  readSource,
  setLastRelease,
  sleep,
  waitForRecordedDigest,
} from './support.js';

const PAUSE = 'uburro.github.com/trigger';

describe('safety valves', () => {
  it('--max-triggers-per-second=50 turns 500 changes at once into a ~10s wave; each release triggered exactly once', needsAudit, async (t) => {
    const n = 500;
    const ns = await createNamespace('throttle');
    const names = Array.from({ length: n }, (_, i) => `r${i}`);
    await inBatches(names, 25, (name) => createHelmRelease(ns, name)); // never released: first sight adopts
    await inBatches(names, 25, (name) => createConfigMap(labeledConfigMap(ns, name, { targets: name, targetNamespace: ns })));
    const h = await startHrto({ watchNamespaces: ns, maxTriggersPerSecond: '50', maxConcurrency: '20', logLevel: 'info' });
    t.after(() => h.stop());
    await allRecorded(ns, names);

    const changed = Date.now();
    await inBatches(names, 50, (name) => patchConfigMap(ns, name, { data: { v: 'wave' } }));
    await allRecorded(ns, names);
    const drained = (Date.now() - changed) / 1000;
    const patches = auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace: ns });
    const perRelease = new Map<string, number>();
    for (const p of patches) perRelease.set(p.objectRef!.name!, (perRelease.get(p.objectRef!.name!) ?? 0) + 1);
    assert.equal(perRelease.size, n, 'every release triggered');
    assert.ok([...perRelease.values()].every((c) => c === 1), 'each exactly once');
    const times = patches.map((p) => Date.parse(p.requestReceivedTimestamp)).sort((a, b) => a - b);
    const spread = (times.at(-1)! - times[0]!) / 1000;
    // A burst of 50, then 50/s: the 450 others need at least 9s; none is dropped.
    assert.ok(spread >= 7, `patches spread over ${spread}s`); // unthrottled, they land within a second or two
    const waited = (await h.metrics.throttleWait.get()).values.find((v) => v.metricName === 'hrto_throttle_wait_seconds_count');
    assert.ok((waited?.value ?? 0) >= n, 'every trigger went through the throttle');
    t.diagnostic(`500 changes drained in ${drained.toFixed(1)}s; patches spread over ${spread.toFixed(1)}s`);
  });

  it('pausing a release or a source stops its triggers and records nothing; resuming triggers what changed', async (t) => {
    const { ns, triggers } = await fixture(t, 'pause');
    await createHelmRelease(ns, 'app');
    await createHelmRelease(ns, 'other');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    await createConfigMap(labeledConfigMap(ns, 'other-values', { targets: 'other', targetNamespace: ns }));
    const adopted = await waitForRecordedDigest(ns, 'values');
    const otherAdopted = await waitForRecordedDigest(ns, 'other-values');

    // Paused release.
    await patchHelmRelease(ns, 'app', { metadata: { annotations: { [PAUSE]: 'disabled' } } });
    await patchConfigMap(ns, 'values', { data: { v: 'while the release is paused' } });
    // Paused source.
    await patchConfigMap(ns, 'other-values', { metadata: { annotations: { [PAUSE]: 'disabled' } }, data: { v: 'while the source is paused' } });
    await sleep(2000); // longer than the debounce: a trigger would have been sent by now
    assert.equal(triggers.total(), 0);
    assert.equal((await readSource('ConfigMap', ns, 'values')).annotations['uburro.github.com/config-digest'], adopted, 'nothing recorded');
    assert.equal((await readSource('ConfigMap', ns, 'other-values')).annotations['uburro.github.com/config-digest'], otherAdopted);

    const explained = hrto(['explain', '--kubeconfig', process.env.HRTO_TEST_KUBECONFIG!, `--watch-namespaces=${ns}`, '-o', 'json']);
    assert.equal(await explained.code, 0);
    const report = JSON.parse(explained.stdout()) as ExplainReport;
    assert.equal(report.releases.find((r) => r.release === `${ns}/app`)?.paused, true);
    assert.equal(report.releases.find((r) => r.release === `${ns}/other`)?.sources[0]?.state, 'paused');

    await patchHelmRelease(ns, 'app', { metadata: { annotations: { [PAUSE]: null } } });
    await patchConfigMap(ns, 'other-values', { metadata: { annotations: { [PAUSE]: null } } });
    await triggers.waitFor('app', 1);
    await triggers.waitFor('other', 1);
    await waitForRecordedDigest(ns, 'values');
    await waitForRecordedDigest(ns, 'other-values');
  });

  it('a Stalled release also gets resetAt, as flux reconcile hr --reset; --reset-stalled=false leaves it out', async (t) => {
    for (const [resetStalled, expectReset] of [['true', true], ['false', false]] as const) {
      // The release is Stalled before hrto starts: a status reaching hrto's cache after the change
      // would be a race of the test, not a behaviour.
      const prepare = async (ns: string): Promise<void> => {
        await createHelmRelease(ns, 'app');
        await setLastRelease(ns, 'app', new Date(Date.now() + 3600_000));
        await custom.patchNamespacedCustomObjectStatus(
          {
            ...HR,
            namespace: ns,
            name: 'app',
            body: {
              status: {
                conditions: [
                  { type: 'Ready', status: 'False', reason: 'RetriesExceeded', message: 'Failed to upgrade after 1 attempt(s)', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
                  { type: 'Stalled', status: 'True', reason: 'RetriesExceeded', message: 'Failed to upgrade after 1 attempt(s)', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
                ],
              },
            },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      };
      const { ns, triggers } = await fixture(t, `stalled-${resetStalled}`, { resetStalled }, { prepare });
      await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
      await waitForRecordedDigest(ns, 'values');
      await patchConfigMap(ns, 'values', { data: { fixed: 'configuration' } });
      await triggers.waitFor('app', 1);
      const annotations = (await getHelmRelease(ns, 'app')).metadata.annotations ?? {};
      const requested = annotations['reconcile.fluxcd.io/requestedAt'];
      assert.equal(annotations['reconcile.fluxcd.io/forceAt'], requested);
      assert.equal(annotations['reconcile.fluxcd.io/resetAt'], expectReset ? requested : undefined, `--reset-stalled=${resetStalled}`);
    }
  });

  it('restarting hrto five times over 200 labeled, unchanged sources sends zero patches', needsAudit, async (t) => {
    const ns = await createNamespace('restarts');
    const releases = Array.from({ length: 20 }, (_, i) => `app${i}`);
    const sources = Array.from({ length: 200 }, (_, i) => `values${i}`);
    await inBatches(releases, 20, (name) => createHelmRelease(ns, name));
    await inBatches(releases, 20, (name) => setLastRelease(ns, name, new Date(Date.now() - 3600_000)));
    await inBatches(sources, 25, (name) =>
      createConfigMap(labeledConfigMap(ns, name, { targets: releases[Number(name.slice(6)) % releases.length]!, targetNamespace: ns })),
    );
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    const first = await startHrto({ watchNamespaces: ns, logLevel: 'info' });
    await allRecorded(ns, sources);
    await first.stop();
    const writes = () =>
      auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace: ns }).length + auditedWrites({ verb: 'patch', resource: 'configmaps', namespace: ns }).length;
    const before = writes();
    const triggered = triggers.total();
    for (let i = 0; i < 5; i++) {
      const h = await startHrto({ watchNamespaces: ns, logLevel: 'info' });
      try {
        // Every source reconciled once after the initial list, and nothing left in the queues.
        await reconciledSince(h, sources.length - 1);
      } finally {
        await h.stop();
      }
    }
    assert.equal(writes(), before, 'no patch after any of the five restarts');
    assert.equal(triggers.total(), triggered);
  });
});
