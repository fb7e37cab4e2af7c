// Safe config rollouts (issue 19) against a real API server, with helm-controller simulated by
// status writes: the changed keys a trigger names (never a value), trigger windows that hold a change
// until they open (across a restart, and as the global flag), rollout-now, bad rollout annotations
// failing closed, and waves that advance on a healthy status and halt on a failed one until resumed.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { type RawSettings, resolveConfig } from '../../src/config.js';
import { runExplain } from '../../src/explain.js';
import { createLogger } from '../../src/log.js';
import { events, type EventSummary, type Hrto, metricValue, REQUESTED_AT, startHrto, TriggerLog, waitForEvent } from './hrto.js';
import {
  api,
  auditedWrites,
  core,
  createConfigMap,
  createNamespace,
  createSecret,
  custom,
  DIGEST,
  eventually,
  getHelmRelease,
  helmRelease,
  HR,
  labeledConfigMap,
  NAMES,
  NAMESPACE,
  patchConfigMap,
  patchSecret,
  readSource,
  sleep,
  waitForRecordedDigest,
  WATCH_LABEL,
} from './support.js';

const KEY_HASHES = 'uburro.github.com/key-hashes';
const WAVE = 'uburro.github.com/wave';
const WINDOWS = 'uburro.github.com/trigger-windows';
const ROLLOUT_NOW = 'uburro.github.com/rollout-now';
const ROLLOUT_RESUME = 'uburro.github.com/rollout-resume';
const HOLD = 'uburro.github.com/suspended-by';
const ROLLOUT = 'uburro.github.com/rollout';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/** `sha256:` and the first 12 hex digits: the prefix Events and explain show. */
const short = (digest: string): string => digest.slice(0, 19);
const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

/** hrto for one namespace, no debounce; stopped at the end of the test (once, however often asked). */
async function start(t: TestContext, ns: string, settings: RawSettings = {}): Promise<Hrto> {
  const h = await startHrto({ watchNamespaces: ns, debounce: '0s', ...settings });
  const stop = h.stop.bind(h);
  let stopped: Promise<void> | undefined;
  h.stop = () => (stopped ??= stop());
  t.after(async () => {
    if (process.env.HRTO_TEST_DEBUG) for (const line of h.logs) process.stderr.write(`[${t.name}] ${JSON.stringify(line)}\n`);
    await h.stop();
  });
  return h;
}

async function triggerLog(t: TestContext, ns: string): Promise<TriggerLog> {
  const triggers = await TriggerLog.start(ns);
  t.after(() => triggers.stop());
  return triggers;
}

async function createRelease(ns: string, name: string, annotations: Record<string, string> = {}, spec: Record<string, unknown> = {}): Promise<void> {
  const body = helmRelease(ns, name, spec) as { metadata: Record<string, unknown> };
  body.metadata.annotations = annotations;
  await custom.createNamespacedCustomObject({ ...HR, namespace: ns, body });
}

async function writeStatus(ns: string, name: string, status: Record<string, unknown>): Promise<void> {
  await custom.patchNamespacedCustomObjectStatus({ ...HR, namespace: ns, name, body: { status } }, mergePatch);
}

const ofRelease = (list: EventSummary[], name: string, reason: string): EventSummary[] => list.filter((e) => e.kind === 'HelmRelease' && e.name === name && e.reason === reason);

/** A cron (5 fields) that fires on the first of a month at least five months away: closed now. */
function farWindow(now = new Date()): { json: string; opensAt: string } {
  const month = ((now.getUTCMonth() + 6) % 12) + 1;
  let opens = Date.UTC(now.getUTCFullYear(), month - 1, 1);
  if (opens <= now.getTime()) opens = Date.UTC(now.getUTCFullYear() + 1, month - 1, 1);
  return { json: JSON.stringify([{ cron: `0 0 1 ${month} *`, timeZone: 'UTC', window: '1m' }]), opensAt: new Date(opens).toISOString() };
}

/**
 * Reconciles of a held change while nothing happens: none (the next look is when the window opens,
 * and the resync period is the default 10m), not a loop.
 */
async function heldQuietly(h: Hrto, source: string): Promise<void> {
  const held = (): number => h.logs.filter((l) => l.source === source && String(l.msg).includes('change held until')).length;
  const before = held();
  await sleep(2_000);
  assert.equal(held() - before, 0, `reconciled again while held and nothing changed (${held() - before} times in 2s)`);
}

const silent = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));

describe('changed keys', () => {
  it('a ConfigMap change names the keys changed, added and removed in the Event and the log line, and records key-hashes', async (t) => {
    const ns = await createNamespace('ro-keys');
    const triggers = await triggerLog(t, ns);
    await createRelease(ns, 'app'); // never released: first sight adopts
    await createConfigMap(
      labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns, data: { 'values.yaml': 'replicas: 1\n', keep: 'same', old: 'going away' } }),
    );
    const h = await start(t, ns);
    await waitForRecordedDigest(ns, 'values');
    const adopted = (await readSource('ConfigMap', ns, 'values')).annotations[KEY_HASHES];
    assert.match(adopted ?? '', /^keep=[0-9a-f]{8},old=[0-9a-f]{8},values\.yaml=[0-9a-f]{8}$/, 'key-hashes recorded with the digest');
    assert.equal(triggers.count('app'), 0);

    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n', extra: 'new', old: null } });
    await triggers.waitFor('app', 1);
    const digest = await waitForRecordedDigest(ns, 'values');
    const event = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'Triggered' });
    assert.ok(event.message.includes('changed values.yaml; added extra; removed old'), event.message);
    assert.ok(event.message.includes(short(digest)), event.message);
    assert.ok(!event.message.includes('keep'), `unchanged key named: ${event.message}`);
    const line = h.logs.find((l) => l.msg.startsWith('triggered HelmRelease'));
    assert.ok(line, 'triggered HelmRelease log line');
    assert.equal(line.changedKeys, 'changed values.yaml; added extra; removed old');
    const hashes = (await readSource('ConfigMap', ns, 'values')).annotations[KEY_HASHES];
    assert.match(hashes ?? '', /^extra=[0-9a-f]{8},keep=[0-9a-f]{8},values\.yaml=[0-9a-f]{8}$/, 'key-hashes follow the content');
    assert.equal(hashes!.split(',')[1], adopted!.split(',')[0], 'keep: same hash');
    assert.notEqual(hashes!.split(',')[2], adopted!.split(',')[2], 'values.yaml: new hash');
  });

  it('a Secret change names its keys and no value anywhere: log lines, Events, annotations', async (t) => {
    const ns = await createNamespace('ro-secret');
    const triggers = await triggerLog(t, ns);
    await createRelease(ns, 'app');
    const values = {
      password: 'Pw-7c1e0f-distinctive-original',
      token: 'Tk-93ab44-distinctive-removed',
      stays: 'St-55d0aa-distinctive-unchanged',
    };
    const newValues = { password: 'Pw-7c1e0f-distinctive-rotated', apiKey: 'Ak-1f2e3d-distinctive-added' };
    await createSecret(ns, 'creds', values, { labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: 'app', [NAMESPACE]: ns } });
    const h = await start(t, ns);
    await waitForRecordedDigest(ns, 'creds', 30_000, 'Secret');

    await patchSecret(ns, 'creds', { stringData: newValues, data: { token: null } });
    await triggers.waitFor('app', 1);
    await waitForRecordedDigest(ns, 'creds', 30_000, 'Secret');
    const event = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'Triggered' });
    assert.ok(event.message.includes(`Secret ${ns}/creds`), event.message);
    assert.ok(event.message.includes('changed password; added apiKey; removed token'), event.message);
    assert.ok(!event.message.includes('stays'), event.message);

    const secrets = [...Object.values(values), ...Object.values(newValues)];
    const forms = secrets.flatMap((v) => [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('base64').replace(/=+$/, '')]);
    const texts = [
      ...h.logs.map((l) => ['log line', JSON.stringify(l)] as const),
      ...(await events(ns)).map((e) => ['Event', e.message] as const),
      ...Object.entries((await readSource('Secret', ns, 'creds')).annotations).map(([k, v]) => [`annotation ${k}`, v] as const),
    ];
    assert.ok(h.logs.length > 0);
    for (const [where, text] of texts) {
      const leaked = forms.find((f) => text.includes(f));
      assert.equal(leaked, undefined, `${where} holds a secret value: ${text}`);
    }
  });
});

describe('trigger windows', () => {
  it('a change outside the window is held (one Held Event, through resyncs) and triggered once when it opens', async (t) => {
    const ns = await createNamespace('ro-window');
    const triggers = await triggerLog(t, ns);
    // Started first, with the release created before its source: once the source's digest is
    // recorded (adopted), hrto's cache holds the release with its windows.
    const h = await start(t, ns, { resyncPeriod: '2s' });
    const opens = new Date(Math.ceil((Date.now() + 15_000) / 1000) * 1000);
    const cron = `${opens.getUTCSeconds()} ${opens.getUTCMinutes()} ${opens.getUTCHours()} * * *`;
    await createRelease(ns, 'app', { [WINDOWS]: JSON.stringify([{ cron, timeZone: 'UTC', window: '1m' }]) });
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    const adopted = await waitForRecordedDigest(ns, 'values');

    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    const held = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'Held' });
    assert.equal(triggers.count('app'), 0, 'no trigger while the window is closed');
    assert.equal(held.type, 'Normal');
    assert.ok(held.message.includes(`held until ${opens.toISOString()}`), `${held.message} (window opens ${opens.toISOString()})`);
    assert.equal((await readSource('ConfigMap', ns, 'values')).annotations[DIGEST], adopted, 'nothing recorded while held');
    assert.equal(await metricValue(h.metrics, 'hrto_held_releases'), 1);

    await triggers.waitFor('app', 1, 60_000);
    const digest = await waitForRecordedDigest(ns, 'values');
    const at = triggers.requests.get('app')![0]!.requestedAt;
    assert.ok(Date.parse(at) >= opens.getTime(), `triggered at ${at}, before the window opened at ${opens.toISOString()}`);
    // Resyncs every 2s went on while the change was held, and go on after it.
    const resyncs = h.logs.filter((l) => l.msg.startsWith('ConfigMap change held until')).length;
    assert.ok(resyncs >= 2, `held reconciles: ${resyncs}`);
    await sleep(4_000);
    assert.equal(triggers.count('app'), 1, 'exactly one trigger');
    const list = await events(ns);
    const helds = ofRelease(list, 'app', 'Held');
    assert.deepEqual(
      helds.map((e) => e.count),
      [1],
      `one Held Event for the change: ${JSON.stringify(helds)}`,
    );
    const triggered = ofRelease(list, 'app', 'Triggered');
    assert.equal(triggered.length, 1);
    assert.ok(triggered[0]!.message.includes(short(digest)), triggered[0]!.message);
    assert.equal(await metricValue(h.metrics, 'hrto_held_releases'), 0);
  });

  it('a held change stays held across a restart (Held once: the hold is on the release; explain says until when); rollout-now on the source lets it through', async (t) => {
    const ns = await createNamespace('ro-restart');
    const triggers = await triggerLog(t, ns);
    const far = farWindow();
    await createRelease(ns, 'app', { [WINDOWS]: far.json });
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'app', targetNamespace: ns }));
    const first = await start(t, ns);
    const adopted = await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    const changed = (await readSource('ConfigMap', ns, 'values')).digest;
    const held = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'Held' });
    assert.ok(held.message.includes(`held until ${far.opensAt}`), held.message);
    await first.stop();

    const second = await start(t, ns);
    await eventually('the new process sees the change held', () => Promise.resolve(second.logs.some((l) => l.msg.startsWith('ConfigMap change held until'))));
    assert.equal(triggers.count('app'), 0, 'still held');
    await heldQuietly(second, `ConfigMap/${ns}/values`);
    const helds = ofRelease(await events(ns), 'app', 'Held');
    assert.deepEqual(helds.map((e) => e.count), [1], `told once, not again by the new process: ${JSON.stringify(helds)}`);
    assert.ok(!second.logs.some((l) => l.msg === 'suspended the HelmRelease to hold a change from helm-controller'), 'the new process found the hold on the release');
    assert.equal((await readSource('ConfigMap', ns, 'values')).annotations[DIGEST], adopted, 'the new content is not recorded');

    const report = await runExplain(resolveConfig({ watchNamespaces: ns, logLevel: 'error' }), api, silent, { namespace: ns, name: 'app' });
    const row = report.releases.find((r) => r.release === `${ns}/app`)?.sources[0];
    assert.ok(row, JSON.stringify(report));
    assert.equal(row.state, 'held');
    assert.equal(row.digest, changed);
    assert.ok(row.reason.includes(`held until ${far.opensAt}`), row.reason);
    assert.deepEqual(row.gate, { gate: 'held', by: 'window', opensAt: Date.parse(far.opensAt) });
    assert.equal(row.changedKeys, 'changed values.yaml');

    // rollout-now: this content goes at once, window or not.
    await patchConfigMap(ns, 'values', { metadata: { annotations: { [ROLLOUT_NOW]: short(changed) } } });
    await triggers.waitFor('app', 1);
    assert.equal(await waitForRecordedDigest(ns, 'values'), changed);
    await sleep(1_000);
    assert.equal(triggers.count('app'), 1);
    assert.ok(second.logs.some((l) => l.msg.startsWith('triggered HelmRelease')));
  });

  it('a sibling of a held release is triggered once per content, however often hrto restarts', async (t) => {
    const ns = await createNamespace('ro-sibling');
    const triggers = await triggerLog(t, ns);
    const far = farWindow();
    await createRelease(ns, 'held', { [WINDOWS]: far.json });
    await createRelease(ns, 'sibling');
    // The digest cannot be recorded while 'held' waits for its window: only the record on the sibling
    // says it was triggered for this content.
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'held,sibling', targetNamespace: ns }));
    let h = await start(t, ns);
    const adopted = await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    await triggers.waitFor('sibling', 1);
    for (let restart = 1; restart <= 2; restart++) {
      await h.stop();
      h = await start(t, ns);
      await eventually('the new process sees the change held', () => Promise.resolve(h.logs.some((l) => String(l.msg).startsWith('ConfigMap change held until'))));
      await sleep(2_000);
      assert.equal(triggers.count('sibling'), 1, `restart ${restart}: the sibling is not triggered again for the same content`);
      assert.ok(!h.logs.some((l) => String(l.msg).startsWith('triggered HelmRelease')), `restart ${restart}: nothing triggered`);
    }
    assert.equal(triggers.count('held'), 0);
    assert.equal((await readSource('ConfigMap', ns, 'values')).annotations[DIGEST], adopted, 'not recorded: one target is held');
    const patches = auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace: ns, name: 'sibling' }).filter((e) => e.userAgent?.startsWith('hrto/'));
    assert.equal(patches.length, 1, 'one trigger patch of the sibling in the audit log');
  });

  it('a hold whose reason goes is lifted at once: the release stops reading the source, or the source goes', async (t) => {
    const ns = await createNamespace('ro-reason');
    const triggers = await triggerLog(t, ns);
    const far = farWindow();
    for (const name of ['reader', 'other']) await createRelease(ns, name, { [WINDOWS]: far.json }, { valuesFrom: [{ kind: 'ConfigMap', name: 'values' }] });
    await createConfigMap(labeledConfigMap(ns, 'values', {}));
    const h = await start(t, ns);
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    const held = async (name: string): Promise<boolean> => {
      const r = (await getHelmRelease(ns, name)) as { spec?: { suspend?: boolean }; metadata: { annotations?: Record<string, string> } };
      return r.spec?.suspend === true && r.metadata.annotations?.[HOLD] !== undefined;
    };
    await eventually('both held', async () => (await held('reader')) && (await held('other')));
    // 'reader' no longer reads the source: nothing holds it.
    await custom.patchNamespacedCustomObject({ ...HR, namespace: ns, name: 'reader', body: { spec: { valuesFrom: null } } }, mergePatch);
    await eventually('reader released', async () => !(await held('reader')));
    assert.equal(await held('other'), true, 'other still held');
    // The source is deleted: nothing holds 'other' either.
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'values' });
    await eventually('other released', async () => !(await held('other')));
    const after = (await getHelmRelease(ns, 'other')) as { spec?: { suspend?: boolean }; metadata: { annotations?: Record<string, string> } };
    assert.equal(after.spec?.suspend, false);
    assert.equal(after.metadata.annotations?.[HOLD], undefined, 'the mark is gone');
    assert.equal(triggers.count('reader') + triggers.count('other'), 0, 'lifted without a trigger: no change is due');
    assert.equal(h.logs.filter((l) => l.msg === 'lifted the hold: nothing holds the change any more and no trigger is due').length, 2);
    assert.deepEqual(ofRelease(await events(ns), 'other', 'HoldLifted').map((e) => e.count), [1]);
  });

  it('a waved release reading a source helm-controller watches itself is told its waves cannot hold it', async (t) => {
    const ns = await createNamespace('ro-unholdable');
    await createRelease(ns, 'app', { [WAVE]: '2' }, { valuesFrom: [{ kind: 'ConfigMap', name: 'values' }] });
    const cm = labeledConfigMap(ns, 'values', {});
    cm.metadata!.labels = { ...cm.metadata!.labels, 'reconcile.fluxcd.io/watch': 'Enabled' };
    await createConfigMap(cm);
    await start(t, ns);
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    const warning = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'CannotHold' });
    assert.equal(warning.type, 'Warning');
    assert.match(warning.message, /waves and windows cannot hold this source/);
  });

  it('--trigger-windows holds releases without the annotation; an annotation of [] is always open', async (t) => {
    const ns = await createNamespace('ro-global');
    const triggers = await triggerLog(t, ns);
    const far = farWindow();
    await createRelease(ns, 'plain');
    await createRelease(ns, 'open', { [WINDOWS]: '[]' });
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'plain,open', targetNamespace: ns }));
    const h = await start(t, ns, { triggerWindows: far.json });
    const adopted = await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    await triggers.waitFor('open', 1);
    const held = await waitForEvent(ns, { kind: 'HelmRelease', name: 'plain', reason: 'Held' });
    assert.ok(held.message.includes(`held until ${far.opensAt}`), held.message);
    await heldQuietly(h, `ConfigMap/${ns}/values`);
    assert.equal(triggers.count('plain'), 0);
    assert.equal(triggers.count('open'), 1);
    assert.equal((await readSource('ConfigMap', ns, 'values')).annotations[DIGEST], adopted, 'plain still waits');
  });
});

describe('invalid rollout annotations', () => {
  it('fail closed: InvalidRollout on each, held, while a valid release of the same source is triggered', async (t) => {
    const ns = await createNamespace('ro-invalid');
    const triggers = await triggerLog(t, ns);
    const bad = {
      'bad-wave': { annotations: { [WAVE]: 'one' }, problem: `${WAVE}: "one" is not an integer` },
      'bad-json': { annotations: { [WINDOWS]: 'not json' }, problem: `${WINDOWS}: not JSON` },
      'bad-zone': {
        annotations: { [WINDOWS]: JSON.stringify([{ cron: '0 8 * * *', timeZone: 'Mars/Olympus', window: '1h' }]) },
        problem: 'unknown time zone "Mars/Olympus"',
      },
    };
    for (const [name, { annotations }] of Object.entries(bad)) await createRelease(ns, name, annotations);
    await createRelease(ns, 'good', { [WAVE]: '0' });
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: [...Object.keys(bad), 'good'].join(','), targetNamespace: ns }));
    const h = await start(t, ns, { resyncPeriod: '2s' });
    await waitForRecordedDigest(ns, 'values');

    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    await triggers.waitFor('good', 1);
    for (const [name, { problem }] of Object.entries(bad)) {
      const event = await waitForEvent(ns, { kind: 'HelmRelease', name, reason: 'InvalidRollout' });
      assert.equal(event.type, 'Warning');
      assert.ok(event.message.includes(problem), `${name}: ${event.message}`);
    }
    await sleep(5_000); // resyncs every 2s decide again
    for (const name of Object.keys(bad)) assert.equal(triggers.count(name), 0, `${name} is held`);
    assert.equal(triggers.count('good'), 1);
    const list = await events(ns);
    for (const name of Object.keys(bad)) {
      assert.deepEqual(
        ofRelease(list, name, 'InvalidRollout').map((e) => e.count),
        [1],
        `${name}: one InvalidRollout Event`,
      );
    }
    assert.ok(h.controller.ready());
    assert.equal(h.logs.filter((l) => l.msg.includes('reconcile failed')).length, 0);
    assert.deepEqual(
      h.logs.filter((l) => l.level >= 50),
      [],
      'no error log lines',
    );
    assert.equal(await metricValue(h.metrics, 'hrto_invalid_rollout_annotations_total'), 3);
  });
});

describe('waves (helm-controller simulated)', () => {
  interface Record_ {
    at: string;
    v: number;
    f: number;
    force: boolean;
    src: Record<string, string>;
  }

  /** Three releases (wave 1, wave 2, unwaved) fed by one ConfigMap, adopted, then changed. */
  async function changedWaves(t: TestContext, prefix: string): Promise<{ ns: string; h: Hrto; triggers: TriggerLog; digest: string; record: Record_ }> {
    const ns = await createNamespace(prefix);
    const triggers = await triggerLog(t, ns);
    await createRelease(ns, 'w1', { [WAVE]: '1' });
    await createRelease(ns, 'w2', { [WAVE]: '2' });
    await createRelease(ns, 'free');
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: 'w1,w2,free', targetNamespace: ns }));
    const h = await start(t, ns);
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    const digest = (await readSource('ConfigMap', ns, 'values')).digest;
    await triggers.waitFor('w1', 1);
    await triggers.waitFor('free', 1);
    await eventually('wave 2 waiting for wave 1', () =>
      Promise.resolve(h.logs.find((l) => String(l.msg).includes('waiting for wave 1 to be healthy') && JSON.stringify(l.targets).includes(`${ns}/w2`))),
    );
    assert.equal(triggers.count('w2'), 0, 'wave 2 waits');
    const hr = await getHelmRelease(ns, 'w1');
    const raw = hr.metadata.annotations?.[ROLLOUT];
    assert.ok(raw, 'rollout record on the wave-1 release');
    const record = JSON.parse(raw) as Record_;
    assert.equal(record.at, hr.metadata.annotations?.[REQUESTED_AT]);
    assert.equal(record.v, 0);
    assert.equal(record.f, 0);
    assert.equal(record.force, true);
    assert.deepEqual(record.src, { [`ConfigMap/${ns}/values`]: short(digest) });
    // Every trigger records the contents it carried, so no later process triggers it again for them.
    const free = JSON.parse((await getHelmRelease(ns, 'free')).metadata.annotations?.[ROLLOUT] ?? '{}') as Partial<Record_>;
    assert.deepEqual(free.src, { [`ConfigMap/${ns}/values`]: short(digest) }, 'unwaved: a record of the contents too');
    // Wave 2 waits for wave 1, and is held from helm-controller meanwhile: suspended with hrto's mark.
    const w2 = await eventually('wave 2 held', async () => {
      const r = (await getHelmRelease(ns, 'w2')) as { spec?: { suspend?: boolean }; metadata: { annotations?: Record<string, string> } };
      return r.spec?.suspend === true && r.metadata.annotations?.[HOLD] ? r : undefined;
    });
    const mark = JSON.parse(w2.metadata.annotations![HOLD]!) as { by: string; reason: string; src: Record<string, string> };
    assert.equal(mark.by, 'helmrelease-trigger-operator');
    assert.equal(mark.reason, 'wave');
    assert.deepEqual(mark.src, { [`ConfigMap/${ns}/values`]: short(digest) });
    return { ns, h, triggers, digest, record };
  }

  const generationOf = async (ns: string, name: string): Promise<number> =>
    ((await getHelmRelease(ns, name)).metadata as { generation?: number }).generation ?? 0;

  const history = (ns: string, name: string, version: number, action: string, configDigest: string, status = 'deployed'): Record<string, unknown> => ({
    name,
    namespace: ns,
    version,
    status,
    action,
    chartName: 'podinfo',
    chartVersion: '6.9.0',
    configDigest,
    digest: 'sha256:1111111111111111111111111111111111111111111111111111111111111111',
    firstDeployed: rfc3339(new Date()),
    lastDeployed: rfc3339(new Date()),
  });

  const CONFIG = 'sha256:2222222222222222222222222222222222222222222222222222222222222222';

  it('wave 2 is triggered once wave 1 reports a successful upgrade for the trigger', async (t) => {
    const { ns, triggers, record, digest } = await changedWaves(t, 'ro-waves');
    await writeStatus(ns, 'w1', {
      lastHandledReconcileAt: record.at,
      conditions: [
        { type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', message: 'Helm upgrade succeeded', observedGeneration: await generationOf(ns, 'w1'), lastTransitionTime: rfc3339(new Date()) },
        { type: 'Released', status: 'True', reason: 'UpgradeSucceeded', message: 'Helm upgrade succeeded', lastTransitionTime: rfc3339(new Date()) },
      ],
      history: [history(ns, 'w1', record.v + 1, 'upgrade', CONFIG)],
      lastAttemptedConfigDigest: CONFIG,
      failures: 0,
    });
    await triggers.waitFor('w2', 1);
    assert.equal(await waitForRecordedDigest(ns, 'values'), digest);
    await sleep(1_000);
    assert.deepEqual([triggers.count('w1'), triggers.count('w2'), triggers.count('free')], [1, 1, 1]);
    assert.equal((await events(ns)).filter((e) => e.reason === 'RolloutHalted').length, 0);
  });

  it('a failed wave 1 halts the rollout (RolloutHalted on the source and the release); rollout-resume lets wave 2 go', async (t) => {
    const { ns, triggers, record, digest, h } = await changedWaves(t, 'ro-halt');
    await writeStatus(ns, 'w1', {
      lastHandledReconcileAt: record.at,
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'UpgradeFailed',
          message: 'Helm upgrade failed for release w1: values don\'t meet the specifications of the schema',
          observedGeneration: await generationOf(ns, 'w1'),
          lastTransitionTime: rfc3339(new Date()),
        },
      ],
      lastAttemptedConfigDigest: CONFIG,
      failures: 1,
    });
    const onSource = await waitForEvent(ns, { kind: 'ConfigMap', name: 'values', reason: 'RolloutHalted' });
    const onRelease = await waitForEvent(ns, { kind: 'HelmRelease', name: 'w1', reason: 'RolloutHalted' });
    for (const e of [onSource, onRelease]) {
      assert.equal(e.type, 'Warning');
      for (const part of [`HelmRelease ${ns}/w1`, 'UpgradeFailed', 'values.yaml', short(digest)]) assert.ok(e.message.includes(part), `${part} not in: ${e.message}`);
    }
    await sleep(4_000); // settle: nothing more may come of it
    assert.equal(triggers.count('w2'), 0, 'wave 2 is never triggered');
    assert.equal(triggers.count('w1'), 1);
    assert.ok(h.logs.some((l) => l.msg.includes('halted after wave 1')));
    // The shipped alert fires on increase(hrto_rollouts_halted_total[1h]) > 0: the halt counts once.
    assert.equal(await metricValue(h.metrics, 'hrto_rollouts_halted_total'), 1);

    // A restart while halted reports nothing again: no Event (and so no Flux alert), no count.
    await h.stop();
    const again = await start(t, ns);
    await eventually('the new process sees the rollout halted', () => Promise.resolve(again.logs.some((l) => String(l.msg).includes('change halted: wave 1'))));
    await sleep(2_000);
    assert.equal(await metricValue(again.metrics, 'hrto_rollouts_halted_total'), 0, 'not counted again: the alert expression stays at 0 after the restart');
    assert.ok(!again.logs.some((l) => l.msg.includes('halted after wave 1')), 'not reported again');
    const halts = (await events(ns)).filter((e) => e.reason === 'RolloutHalted');
    assert.deepEqual(halts.map((e) => e.count), [1, 1], `one RolloutHalted on the source and one on the release: ${JSON.stringify(halts)}`);

    await patchConfigMap(ns, 'values', { metadata: { annotations: { [ROLLOUT_RESUME]: short(digest) } } });
    await triggers.waitFor('w2', 1);
    assert.equal(await waitForRecordedDigest(ns, 'values'), digest);
    await sleep(1_000);
    assert.deepEqual([triggers.count('w1'), triggers.count('w2'), triggers.count('free')], [1, 1, 1]);
    assert.equal((await events(ns)).filter((e) => e.reason === 'RolloutHalted').reduce((n, e) => n + e.count, 0), 2, 'halted reported once, on two objects');
  });

  it('--max-upgrades-in-flight: no more releases are triggered while that many have not finished', async (t) => {
    const ns = await createNamespace('ro-inflight');
    const triggers = await triggerLog(t, ns);
    const names = ['a', 'b', 'c'];
    for (const name of names) await createRelease(ns, name);
    await createConfigMap(labeledConfigMap(ns, 'values', { targets: names.join(','), targetNamespace: ns }));
    const h = await start(t, ns, { maxUpgradesInFlight: '1' });
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 3\n' } });
    const done: string[] = [];
    for (let step = 1; step <= names.length; step++) {
      const next = await eventually(`trigger ${step} of ${names.length}`, () => Promise.resolve(names.find((n) => !done.includes(n) && triggers.count(n) > 0)));
      await sleep(2_000); // settle: the limit holds the others back
      assert.deepEqual(names.filter((n) => !done.includes(n) && triggers.count(n) > 0), [next], `only ${next} in flight`);
      assert.equal(await metricValue(h.metrics, 'hrto_upgrades_in_flight'), 1);
      const record = JSON.parse((await getHelmRelease(ns, next)).metadata.annotations![ROLLOUT]!) as Record_;
      await writeStatus(ns, next, {
        lastHandledReconcileAt: record.at,
        conditions: [{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', message: 'ok', observedGeneration: await generationOf(ns, next), lastTransitionTime: rfc3339(new Date()) }],
        history: [history(ns, next, record.v + 1, 'upgrade', CONFIG)],
        lastAttemptedConfigDigest: CONFIG,
        failures: 0,
      });
      done.push(next);
    }
    await waitForRecordedDigest(ns, 'values');
    assert.deepEqual(names.map((n) => triggers.count(n)), [1, 1, 1]);
  });
});

describe('rollout plans (helm-controller simulated)', () => {
  const PLAN = 'uburro.github.com/rollout-plan';

  async function labeledRelease(ns: string, name: string, labels: Record<string, string>, annotations: Record<string, string> = {}): Promise<void> {
    const body = helmRelease(ns, name, { valuesFrom: [{ kind: 'ConfigMap', name: 'values' }] }) as { metadata: Record<string, unknown> };
    body.metadata.labels = labels;
    body.metadata.annotations = annotations;
    await custom.createNamespacedCustomObject({ ...HR, namespace: ns, body });
  }

  const held = async (ns: string, name: string): Promise<{ reason: string } | undefined> => {
    const r = (await getHelmRelease(ns, name)) as { spec?: { suspend?: boolean }; metadata: { annotations?: Record<string, string> } };
    const mark = r.metadata.annotations?.[HOLD];
    return r.spec?.suspend === true && mark ? (JSON.parse(mark) as { reason: string }) : undefined;
  };

  it("orders only the source's own releases: another team's release with the same ring label is untouched; a wave yields to the plan; unselected releases are held; an unreadable plan holds everything", async (t) => {
    const ours = await createNamespace('plan-ours');
    const theirs = await createNamespace('plan-theirs');
    const triggers = await triggerLog(t, ours);
    const theirTriggers = await triggerLog(t, theirs);
    await labeledRelease(ours, 'canary', { ring: 'canary' });
    await labeledRelease(ours, 'main', { ring: 'main' }, { [WAVE]: '1' });
    await labeledRelease(ours, 'stray', {});
    // Another team's namespace: the same ring label, its own source without a plan.
    await labeledRelease(theirs, 'theirs', { ring: 'canary' });
    await createConfigMap(labeledConfigMap(theirs, 'values', {}));
    const plan = JSON.stringify({ steps: [{ name: 'canary', selector: 'ring=canary' }, { name: 'main', selector: 'ring=main' }], unselected: 'never' });
    await createConfigMap(labeledConfigMap(ours, 'values', { annotations: { [PLAN]: plan } }));
    const h = await start(t, `${ours},${theirs}`, { noCrossNamespaceRefs: 'true' });
    await waitForRecordedDigest(ours, 'values');
    await waitForRecordedDigest(theirs, 'values');

    const changed = new Date().toISOString();
    await patchConfigMap(ours, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    await triggers.waitFor('canary', 1);
    assert.equal((await eventually('main held for its step', () => held(ours, 'main'))).reason, 'step');
    assert.equal((await eventually('stray held: no step selects it', () => held(ours, 'stray'))).reason, 'unselected');
    const yielded = await waitForEvent(ours, { kind: 'HelmRelease', name: 'main', reason: 'InvalidRollout' });
    assert.match(yielded.message, /has uburro.github.com\/wave=1 and ConfigMap \S+\/values orders it by its rollout plan \(step main\): the plan wins/);
    await sleep(3_000);
    assert.equal(triggers.count('main'), 0);
    assert.equal(triggers.count('stray'), 0);
    // hrto never wrote to the other team's release, and never suspended it.
    assert.equal(theirTriggers.count('theirs'), 0);
    assert.deepEqual(
      auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace: theirs }).filter((e) => e.requestReceivedTimestamp >= changed),
      [],
      'no patch of their release',
    );
    assert.equal(await held(theirs, 'theirs'), undefined);

    // An unreadable plan fails closed: the next change is held everywhere, told once on the source.
    await patchConfigMap(ours, 'values', { metadata: { annotations: { [PLAN]: '{"steps": []}' } }, data: { 'values.yaml': 'replicas: 3\n' } });
    const invalid = await waitForEvent(ours, { kind: 'ConfigMap', name: 'values', reason: 'InvalidRollout' });
    assert.match(invalid.message, /uburro.github.com\/rollout-plan: no steps: a plan needs at least one step: changes of ConfigMap \S+\/values \(sha256:[0-9a-f]{12}; .*\) are held until it is fixed/);
    assert.equal((await eventually('canary held for the unreadable plan', () => held(ours, 'canary'))).reason, 'invalid');
    await sleep(3_000);
    assert.equal(triggers.count('canary'), 1, 'not triggered for the new content');
    assert.deepEqual(ofRelease(await events(ours), 'canary', 'InvalidRollout'), [], 'the plan is told on the source, not on every release');
    assert.equal(h.logs.filter((l) => l.level >= 50).length, 0, 'no error log lines');
  });
});
