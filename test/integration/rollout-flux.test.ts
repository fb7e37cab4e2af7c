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
import { Writable } from 'node:stream';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { after, before, describe, it, type TestContext } from 'node:test';
import { createLogger } from '../../src/log.js';
import { type Cached, Informer } from '../../src/sources/informer.js';
import { DEMO_INVALID_VALUES, demoHelmRelease, FluxControllers, type FluxEventBody } from '../harness/flux.js';
import { type Webhook, webhook } from '../harness/webhook.js';
import { events, type EventSummary, REQUESTED_AT, startHrto, TriggerLog } from './hrto.js';
import { clusterArgs, fastLeaderElection, leaderAndStandby, logLines, type Run, waitForLog } from './process.js';
import {
  api,
  type AuditEvent,
  auditEvents,
  auditLogPath,
  core,
  createConfigMap,
  createNamespace,
  custom,
  eventually,
  HR,
  kc,
  NAMES,
  NAMESPACE,
  patchConfigMap,
  patchHelmRelease,
  sleep,
  waitForRecordedDigest,
  WATCH_LABEL,
} from './support.js';

const onTestControlPlane = { skip: auditLogPath ? false : 'starts Flux controllers and reads the audit log: needs the test control plane' };

const WAVE = 'uburro.github.com/wave';
const ROLLOUT = 'uburro.github.com/rollout';
const HOLD = 'uburro.github.com/suspended-by';
const WINDOWS = 'uburro.github.com/trigger-windows';
const SOURCE = 'values';
/** Release name -> wave, in wave order. */
const RELEASES: readonly (readonly [string, number])[] = [
  ['w1-a', 1],
  ['w1-b', 1],
  ['w2-a', 2],
  ['w2-b', 2],
  ['w3-a', 3],
  ['w3-b', 3],
];
const NAMES_OF = (wave: number): string[] => RELEASES.filter(([, w]) => w === wave).map(([name]) => name);
const ALL = RELEASES.map(([name]) => name);
/** One wave: a forced upgrade of a one-ConfigMap chart takes seconds; three waves well within this. */
const ROLLOUT_TIMEOUT = 180_000;
/** How long a halted rollout is watched for a patch it must never make. */
const SETTLE_MS = 20_000;

// --- what the watch saw of each HelmRelease ------------------------------------------------------

interface Condition {
  status: string;
  reason: string;
  observedGeneration?: number;
}

interface Seen extends Cached {
  name: string;
  /** When the watch delivered this state (this process's clock, as the audit log's). */
  at: number;
  generation: number;
  requestedAt?: string;
  rollout?: string;
  lastHandledReconcileAt?: string;
  failures: number;
  ready?: Condition;
  reconciling?: Condition;
  stalled?: Condition;
  latest?: { version: number; status: string; action?: string; configDigest?: string };
  lastAttemptedConfigDigest?: string;
  /** spec.suspend. */
  suspend: boolean;
  /** hrto's hold mark. */
  hold?: string;
}

function seen(raw: Record<string, unknown>): Seen {
  const meta = (raw.metadata ?? {}) as { name?: string; resourceVersion?: string; generation?: number; annotations?: Record<string, string> };
  const spec = (raw.spec ?? {}) as { suspend?: boolean };
  const status = (raw.status ?? {}) as {
    lastHandledReconcileAt?: string;
    failures?: number;
    conditions?: (Condition & { type: string })[];
    history?: { version: number; status: string; action?: string; configDigest?: string }[];
    lastAttemptedConfigDigest?: string;
  };
  const condition = (type: string): Condition | undefined => {
    const c = status.conditions?.find((x) => x.type === type);
    return c && { status: c.status, reason: c.reason, ...(c.observedGeneration === undefined ? {} : { observedGeneration: c.observedGeneration }) };
  };
  const latest = status.history?.[0];
  return {
    key: meta.name ?? '',
    name: meta.name ?? '',
    resourceVersion: meta.resourceVersion ?? '',
    at: Date.now(),
    generation: meta.generation ?? 0,
    requestedAt: meta.annotations?.[REQUESTED_AT],
    rollout: meta.annotations?.[ROLLOUT],
    lastHandledReconcileAt: status.lastHandledReconcileAt,
    failures: status.failures ?? 0,
    ready: condition('Ready'),
    reconciling: condition('Reconciling'),
    stalled: condition('Stalled'),
    latest: latest && { version: latest.version, status: latest.status, action: latest.action, configDigest: latest.configDigest },
    lastAttemptedConfigDigest: status.lastAttemptedConfigDigest,
    suspend: spec.suspend === true,
    hold: meta.annotations?.[HOLD],
  };
}

/** Every state of the namespace's HelmReleases the watch delivered, in order, with when. */
class ReleaseWatch {
  readonly states = new Map<string, Seen[]>();
  private informer?: Informer<Seen>;

  static async start(namespace: string): Promise<ReleaseWatch> {
    const watch = new ReleaseWatch();
    const informer = new Informer<Seen>({
      name: `test-rollout[${namespace}]`,
      api,
      path: `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${namespace}/helmreleases`,
      log: createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })),
      transform: (raw) => seen(raw),
    });
    const record = (s: Seen): void => {
      const list = watch.states.get(s.name) ?? [];
      list.push(s);
      watch.states.set(s.name, list);
    };
    informer.addHandlers({ add: record, update: (_old, s) => record(s) });
    informer.start();
    await informer.waitForSync();
    watch.informer = informer;
    return watch;
  }

  current(name: string): Seen | undefined {
    return this.states.get(name)?.at(-1);
  }

  /** The first state after `since` that `match` accepts. */
  first(name: string, since: number, match: (s: Seen) => boolean): Seen | undefined {
    return this.states.get(name)?.find((s) => s.at >= since && match(s));
  }

  /** A release's states since a time, one compact line each: the failure message of a test. */
  timeline(name: string, since: number): string {
    return (this.states.get(name) ?? [])
      .filter((s) => s.at >= since)
      .map((s) =>
        JSON.stringify({
          t: s.at - since,
          req: s.requestedAt,
          handled: s.lastHandledReconcileAt,
          f: s.failures,
          ready: s.ready && `${s.ready.status}/${s.ready.reason}@${s.ready.observedGeneration}`,
          reconciling: s.reconciling && `${s.reconciling.status}/${s.reconciling.reason}`,
          stalled: s.stalled?.status,
          latest: s.latest && `v${s.latest.version} ${s.latest.status} ${s.latest.action ?? ''}`,
          attempted: s.lastAttemptedConfigDigest?.slice(7, 19),
          suspend: s.suspend || undefined,
          hold: s.hold,
        }),
      )
      .join('\n');
  }

  async stop(): Promise<void> {
    await this.informer?.shutdown();
  }
}

/** What a release was before a change: its newest revision, failures and reconcile request. */
interface Baseline {
  version: number;
  failures: number;
  requestedAt: string | undefined;
}

function baselines(watch: ReleaseWatch): Map<string, Baseline> {
  return new Map(
    ALL.map((name) => {
      const s = watch.current(name);
      assert.ok(s, `the watch has seen ${name}`);
      return [name, { version: s.latest?.version ?? 0, failures: s.failures, requestedAt: s.requestedAt }];
    }),
  );
}

/** Triggered anew since the baseline, and helm-controller reports that trigger upgraded and Ready. */
function upgradedAndReady(s: Seen, base: Baseline): boolean {
  return (
    s.requestedAt !== undefined &&
    s.requestedAt !== base.requestedAt &&
    s.lastHandledReconcileAt === s.requestedAt &&
    (s.latest?.version ?? 0) > base.version &&
    s.latest?.status === 'deployed' &&
    s.ready?.status === 'True' &&
    s.ready.observedGeneration === s.generation
  );
}

/** Triggered anew since the baseline, and helm-controller reports the upgrade failed. */
function upgradeFailed(s: Seen, base: Baseline): boolean {
  return (
    s.requestedAt !== undefined &&
    s.requestedAt !== base.requestedAt &&
    s.lastHandledReconcileAt === s.requestedAt &&
    (s.failures > base.failures || (s.ready?.status === 'False' && s.ready.reason === 'UpgradeFailed'))
  );
}

// --- what the API server recorded ----------------------------------------------------------------

/** hrto's patches of HelmReleases received since `since`, each with its body. */
function hrtoReleasePatches(ns: string, since: number): AuditEvent[] {
  return auditEvents(ns).filter(
    (e) =>
      e.verb === 'patch' &&
      e.objectRef?.resource === 'helmreleases' &&
      e.objectRef.subresource === undefined &&
      e.userAgent?.startsWith('hrto/') &&
      (e.responseStatus?.code ?? 0) < 300 &&
      Date.parse(e.requestReceivedTimestamp) >= since,
  );
}

const isTrigger = (e: AuditEvent): boolean => typeof e.requestObject?.metadata?.annotations?.[REQUESTED_AT] === 'string';

/** hrto's trigger patches of HelmReleases (they set requestedAt) received since `since`, by release, oldest first. */
function triggerPatches(ns: string, since: number): Map<string, string[]> {
  const byRelease = new Map<string, string[]>();
  for (const e of hrtoReleasePatches(ns, since)) {
    if (!isTrigger(e)) continue;
    const list = byRelease.get(e.objectRef!.name!) ?? [];
    list.push(e.requestReceivedTimestamp);
    byRelease.set(e.objectRef!.name!, list);
  }
  for (const list of byRelease.values()) list.sort();
  return byRelease;
}

/** When the API server received the first trigger of any release of the wave (asserted to exist). */
function firstPatchOf(patches: Map<string, string[]>, wave: number): string {
  const first = NAMES_OF(wave)
    .map((name) => patches.get(name)?.[0])
    .filter((p): p is string => p !== undefined)
    .sort()[0];
  assert.ok(first, `wave ${wave} was patched`);
  return first;
}

/**
 * When the API server received the helm-controller status write that the watch saw a state in: the
 * newest status write of the release received no later than the watch delivered it. (The write that
 * produced the state came before its watch event, so this is that write or, rarely, a later one.)
 * Audit timestamps have microseconds and one format: they compare as strings.
 */
function statusWrittenAt(ns: string, name: string, watchedAt: number): string {
  const writes = auditEvents(ns)
    .filter(
      (e) =>
        (e.verb === 'patch' || e.verb === 'update') &&
        e.objectRef?.resource === 'helmreleases' &&
        e.objectRef.name === name &&
        e.objectRef.subresource === 'status' &&
        Date.parse(e.requestReceivedTimestamp) <= watchedAt,
    )
    .map((e) => e.requestReceivedTimestamp)
    .sort();
  const last = writes.at(-1);
  assert.ok(last, `an audited status write of ${name} before the watch saw it Ready`);
  return last;
}

// --- fixtures ------------------------------------------------------------------------------------

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

async function rendered(ns: string, release: string): Promise<string | undefined> {
  const cm = await core.readNamespacedConfigMap({ namespace: ns, name: `${release}-rendered` }).catch(() => undefined);
  return cm?.data?.message;
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
    for (const name of NAMES_OF(1)) assert.ok(triggeredBy(leader, name) && !triggeredBy(standby, name), `${name} triggered by the first leader only`);
    for (const name of [...NAMES_OF(2), ...NAMES_OF(3)]) assert.ok(triggeredBy(standby, name) && !triggeredBy(leader, name), `${name} triggered by the new leader only`);
    t.diagnostic(`killed +${killed - changed} ms; patches: ${JSON.stringify(Object.fromEntries(patches))}`);
  });

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
        // The window opens at the next minute boundary at least 30 s away, for 5 minutes.
        const opens = new Date(Math.ceil((Date.now() + 30_000) / 60_000) * 60_000);
        await patchHelmRelease(ns, NIGHTLY, {
          metadata: { annotations: { [WINDOWS]: JSON.stringify([{ cron: `${opens.getUTCMinutes()} ${opens.getUTCHours()} * * *`, timeZone: 'UTC', window: '5m' }]) } },
        });
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
