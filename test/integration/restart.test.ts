// Restarts with work pending: hrto SIGKILLed while a trigger waits for the debounce window, for the
// minimum interval, or right after autodiscovery marked a source. Nothing that work needs lives only
// in memory (the digest on the source, the trigger record and requestedAt on the release), so the
// next process ends each with exactly one trigger per release per content, read from the audit log.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterArgs, hrto, logLines, type Run } from './process.js';
import {
  allRecorded,
  auditedWrites,
  createConfigMap,
  createHelmRelease,
  createNamespace,
  eventually,
  inBatches,
  labeledConfigMap,
  needsAudit,
  patchConfigMap,
  readSource,
  sleep,
  waitForRecordedDigest,
  WATCH_LABEL,
} from './support.js';

/** hrto's trigger patches of each release (they set requestedAt), in the order received. */
function triggers(ns: string, name: string): string[] {
  return auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace: ns, name })
    .filter((e) => e.userAgent?.startsWith('hrto/') && typeof e.requestObject?.metadata?.annotations?.['reconcile.fluxcd.io/requestedAt'] === 'string')
    .map((e) => e.requestReceivedTimestamp)
    .sort();
}

async function pairs(prefix: string, n: number): Promise<{ ns: string; names: string[] }> {
  const ns = await createNamespace(prefix);
  const names = Array.from({ length: n }, (_, i) => `r${i}`);
  await inBatches(names, 10, (name) => createHelmRelease(ns, name));
  await inBatches(names, 10, (name) => createConfigMap(labeledConfigMap(ns, name, { targets: name, targetNamespace: ns })));
  return { ns, names };
}

function start(t: { after: (fn: () => void) => void }, args: string[]): Run {
  const run = hrto(args);
  t.after(() => run.kill('SIGKILL'));
  return run;
}

describe('restarts with work pending', needsAudit, () => {
  it('SIGKILLed while triggers wait for the debounce window: the next process triggers each release once', async (t) => {
    const { ns, names } = await pairs('restart-debounce', 5);
    const args = clusterArgs(ns, ['--debounce=4s', '--min-trigger-interval=0s']);
    const first = start(t, args);
    await allRecorded(ns, names);
    await inBatches(names, 5, (name) => patchConfigMap(ns, name, { data: { v: '2' } }));
    await sleep(1_500); // inside the debounce window
    first.kill('SIGKILL');
    await first.code;
    assert.ok(!logLines(first).some((l) => l.msg.startsWith('triggered')), 'nothing triggered before the kill');
    const second = start(t, args);
    await allRecorded(ns, names, 60_000);
    await sleep(1_000);
    for (const name of names) assert.equal(triggers(ns, name).length, 1, `${name}: one trigger for its change`);
    assert.equal(logLines(second).filter((l) => l.msg.startsWith('triggered')).length, names.length);
  });

  it('SIGKILLed while a trigger waits out the minimum interval: the next process waits the rest of it, then triggers once', async (t) => {
    const { ns, names } = await pairs('restart-interval', 3);
    const args = clusterArgs(ns, ['--debounce=0s', '--min-trigger-interval=12s']);
    const first = start(t, args);
    await allRecorded(ns, names);
    await inBatches(names, 3, (name) => patchConfigMap(ns, name, { data: { v: '2' } }));
    await allRecorded(ns, names); // the first content: triggered at once
    await inBatches(names, 3, (name) => patchConfigMap(ns, name, { data: { v: '3' } }));
    await sleep(2_000);
    for (const name of names) assert.equal(triggers(ns, name).length, 1, `${name}: the second change waits out the minimum interval`);
    first.kill('SIGKILL');
    await first.code;
    start(t, args);
    await allRecorded(ns, names, 60_000);
    await sleep(1_000);
    for (const name of names) {
      const [one, two, ...more] = triggers(ns, name);
      assert.ok(one && two, `${name}: a trigger for each content`);
      assert.deepEqual(more, [], `${name}: one trigger per content`);
      assert.ok(Date.parse(two) - Date.parse(one) >= 11_900, `${name}: the second came ${Date.parse(two) - Date.parse(one)} ms after the first (minimum 12 s)`);
    }
  });

  it('SIGKILLed right after autodiscovery marked a source: the next process records it, and its change triggers once', async (t) => {
    const ns = await createNamespace('restart-marks');
    await createHelmRelease(ns, 'app', { valuesFrom: [{ kind: 'ConfigMap', name: 'values' }] });
    await createConfigMap({ metadata: { name: 'values', namespace: ns }, data: { 'values.yaml': 'a: 1\n' } });
    const args = clusterArgs(ns, ['--debounce=0s', '--min-trigger-interval=0s']);
    const first = start(t, args);
    await eventually('the source labeled by autodiscovery', async () => (await readSource('ConfigMap', ns, 'values')).labels?.[WATCH_LABEL] === 'true');
    first.kill('SIGKILL');
    await first.code;
    start(t, args);
    await waitForRecordedDigest(ns, 'values', 60_000);
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'a: 2\n' } });
    await eventually('the change triggered', () => Promise.resolve(triggers(ns, 'app').length >= 1), 60_000);
    await sleep(2_000);
    assert.equal(triggers(ns, 'app').length, 1, 'one trigger for the change');
  });
});
