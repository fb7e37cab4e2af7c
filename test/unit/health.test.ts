// The health reading of a trigger, on the status sequences helm-controller v1.6 writes (see
// ../shared/docs/flux-contract.md, "Reading the outcome of a trigger"), each passed through toRelease.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keysFor } from '../../src/keys.js';
import { encodeRolloutRecord, type Health, parseRolloutRecord, readHealth, type RolloutRecord, snapshotBefore } from '../../src/rollout/health.js';
import { type ReleaseObject, toRelease } from '../../src/sources/objects.js';

const keys = keysFor();
const OLD_AT = '2026-02-27T09:00:00.5Z';
const AT = '2026-03-01T10:00:00.123456789Z';
const LATER_AT = '2026-03-01T10:02:00.000000001Z';
const T0 = Date.parse(AT);
const MIN = 60_000;
const TIMEOUT = 15 * MIN;
const OLD_VALUES = `sha256:${'1'.repeat(64)}`;
const NEW_VALUES = `sha256:${'2'.repeat(64)}`;

interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}
const cond = (type: string, status: Condition['status'], reason: string, message = `${type} ${reason}`, observedGeneration = 2): Condition => ({
  type,
  status,
  reason,
  message,
  observedGeneration,
  lastTransitionTime: '2026-03-01T10:00:01Z',
});
const snap = (version: number, status: string, action: string, configDigest: string, testHooks?: Record<string, { phase: string }>) => ({
  apiVersion: 'v2',
  name: 'app',
  namespace: 'ns',
  version,
  status,
  action,
  chartName: 'app',
  chartVersion: '1.0.0',
  configDigest,
  digest: `sha256:${String(version).repeat(64).slice(0, 64)}`,
  firstDeployed: '2026-01-01T00:00:00Z',
  lastDeployed: '2026-03-01T10:00:02Z',
  ...(testHooks ? { testHooks } : {}),
});

const v3 = snap(3, 'deployed', 'upgrade', OLD_VALUES);
const v3Superseded = snap(3, 'superseded', 'upgrade', OLD_VALUES);
const v4 = snap(4, 'deployed', 'upgrade', NEW_VALUES);
const readyOld = cond('Ready', 'True', 'UpgradeSucceeded', 'Helm upgrade succeeded for release ns/app.v3 with chart app@1.0.0');
const releasedOld = cond('Released', 'True', 'UpgradeSucceeded', 'Helm upgrade succeeded for release ns/app.v3 with chart app@1.0.0');
const readyNew = cond('Ready', 'True', 'UpgradeSucceeded', 'Helm upgrade succeeded for release ns/app.v4 with chart app@1.0.0');
const releasedNew = cond('Released', 'True', 'UpgradeSucceeded', 'Helm upgrade succeeded for release ns/app.v4 with chart app@1.0.0');
const prerequisites = cond('Reconciling', 'True', 'Progressing', 'Fulfilling prerequisites');
const runningUpgrade = cond('Reconciling', 'True', 'Progressing', "Running 'upgrade' action with timeout of 5m0s");
const upgradeFailed = (status: 'Ready' | 'Released') =>
  cond(status, 'False', 'UpgradeFailed', 'Helm upgrade failed for release ns/app with chart app@1.0.0: values don\'t meet the specifications of the schema(s)');

/** The status before hrto's trigger: v3 deployed with the old values, healthy. */
const before = {
  observedGeneration: 2,
  lastAttemptedGeneration: 2,
  lastAttemptedRevision: '1.0.0',
  lastAttemptedConfigDigest: OLD_VALUES,
  lastAttemptedReleaseAction: 'upgrade',
  lastHandledReconcileAt: OLD_AT,
  lastHandledForceAt: OLD_AT,
  history: [v3, snap(2, 'superseded', 'upgrade', OLD_VALUES)],
  conditions: [readyOld, releasedOld],
};

type Status = Record<string, unknown>;
function hr(status: Status, opts: { generation?: number; requestedAt?: string; test?: boolean } = {}): ReleaseObject {
  const requestedAt = opts.requestedAt ?? AT;
  return toRelease(
    {
      metadata: {
        name: 'app',
        namespace: 'ns',
        resourceVersion: '7',
        generation: opts.generation ?? 2,
        annotations: { 'reconcile.fluxcd.io/requestedAt': requestedAt, 'reconcile.fluxcd.io/forceAt': requestedAt, [keys.wave]: '1' },
      },
      spec: { interval: '10m', chart: { spec: { chart: 'app' } }, ...(opts.test ? { test: { enable: true } } : {}) },
      status,
    },
    keys,
  );
}

const record = (over: Partial<RolloutRecord> = {}): RolloutRecord => ({ at: AT, v: 3, f: 0, force: true, src: { 'ConfigMap/ns/cfg': 'sha256:abcdefabcdef' }, ...over });
const read = (status: Status, opts: Parameters<typeof hr>[1] = {}, rec: RolloutRecord = record(), now = T0 + 30_000): Health =>
  readHealth(hr(status, opts), rec, now, TIMEOUT);
const failedWith = (h: Health, reason: string): void => {
  assert.equal(h.state, 'failed', JSON.stringify(h));
  assert.equal(h.state === 'failed' && h.reason, reason, JSON.stringify(h));
};

describe('readHealth', () => {
  it('a good forced upgrade: in progress through every stage, succeeded only at the end', () => {
    const stages: Status[] = [
      // hrto's patch landed, helm-controller has not started: Ready=True is the old release's.
      before,
      // The reconcile started.
      { ...before, conditions: [readyOld, releasedOld, prerequisites] },
      // The "running the action" patch: lastHandledForceAt moved, nothing else says anything.
      { ...before, lastHandledForceAt: AT, lastAttemptedConfigDigest: NEW_VALUES, conditions: [cond('Ready', 'Unknown', 'Progressing', runningUpgrade.message), releasedOld, runningUpgrade] },
      // The upgrade stored v4 and passed; the reconcile has not ended (Reconciling=True, not handled).
      { ...before, lastHandledForceAt: AT, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew, runningUpgrade] },
    ];
    for (const [i, status] of stages.entries()) assert.deepEqual(read(status), { state: 'progressing' }, `stage ${i}`);
    const done = { ...before, lastHandledForceAt: AT, lastHandledReconcileAt: AT, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew] };
    assert.deepEqual(read(done), { state: 'succeeded' });
  });

  it('a held change that slipped through (no request of hrto\'s): read from what came after the noted revision', () => {
    const slip = record({ force: false, slip: true });
    // helm-controller's interval reconcile applied it: no request was handled, v4 deployed and Ready.
    const upgraded = { ...before, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew] };
    assert.deepEqual(read(upgraded, {}, slip), { state: 'succeeded' });
    assert.deepEqual(read(upgraded, {}, record({ force: false })), { state: 'progressing' }, 'a request of hrto\'s waits for it to be handled');
    // It attempted values the chart rejects: no revision, Ready=False UpgradeFailed.
    failedWith(read({ ...before, lastAttemptedConfigDigest: NEW_VALUES, failures: 1, conditions: [upgradeFailed('Ready'), upgradeFailed('Released')] }, {}, slip), 'UpgradeFailed');
    assert.deepEqual(parseRolloutRecord(encodeRolloutRecord(slip)), slip);
  });

  it('trap 1: a failure before Helm stores a release, then Ready=True for the old revision, is a failure', () => {
    // The reconcile ends in the error: no entry, failures + 1, Reconciling left True.
    const failedAttempt = {
      ...before,
      lastHandledForceAt: AT,
      lastHandledReconcileAt: AT,
      failures: 1,
      conditions: [upgradeFailed('Ready'), upgradeFailed('Released'), runningUpgrade],
    };
    failedWith(read(failedAttempt), 'UpgradeFailed');
    // A second later the retry finds the release in sync, the force used up: Ready=True, still v3.
    const inSyncAgain = {
      ...before,
      lastHandledForceAt: AT,
      lastHandledReconcileAt: AT,
      failures: 1,
      conditions: [readyOld, releasedOld],
    };
    failedWith(read(inSyncAgain), 'UpgradeFailed');
    // Without the failure count (e.g. reset by the trigger's resetAt): the force was used up for nothing.
    failedWith(read({ ...inSyncAgain, failures: 0 }), 'NoUpgrade');
    failedWith(read({ ...inSyncAgain, failures: 1 }, {}, record({ f: 1 })), 'NoUpgrade');
  });

  it('trap 1 with changed values: counters reset by the change, retried with Reconciling=True, is a failure', () => {
    // f was 2 from an earlier failure; the new values digest reset the counters, the schema check failed once.
    const retrying = {
      ...before,
      lastHandledForceAt: AT,
      lastHandledReconcileAt: AT,
      lastAttemptedConfigDigest: NEW_VALUES,
      failures: 1,
      conditions: [upgradeFailed('Ready'), upgradeFailed('Released'), runningUpgrade],
    };
    failedWith(read(retrying, {}, record({ f: 2 })), 'UpgradeFailed');
  });

  it('trap 2: a stored failure rolled back, then Ready=True again for the rolled-back revision, is a failure', () => {
    const v4Failed = snap(4, 'failed', 'upgrade', NEW_VALUES);
    const rollback = snap(5, 'deployed', 'rollback', OLD_VALUES);
    const upgradeStoredFailure = {
      ...before,
      lastHandledForceAt: AT,
      lastAttemptedConfigDigest: OLD_VALUES,
      failures: 1,
      upgradeFailures: 1,
      history: [v4Failed, v3],
      conditions: [upgradeFailed('Ready'), upgradeFailed('Released'), runningUpgrade],
    };
    failedWith(read(upgradeStoredFailure), 'UpgradeFailed');
    const rolledBack = {
      ...upgradeStoredFailure,
      lastHandledReconcileAt: AT,
      history: [rollback, v4Failed, snap(3, 'superseded', 'rollback', OLD_VALUES)],
      conditions: [
        cond('Ready', 'False', 'RollbackSucceeded', 'Helm rollback to previous release ns/app.v3 with chart app@1.0.0 succeeded'),
        cond('Remediated', 'True', 'RollbackSucceeded', 'Helm rollback to previous release ns/app.v3 with chart app@1.0.0 succeeded'),
        upgradeFailed('Released'),
        cond('Reconciling', 'True', 'ProgressingWithRetry', 'Helm rollback to previous release ns/app.v3 with chart app@1.0.0 succeeded'),
      ],
    };
    failedWith(read(rolledBack), 'RollbackSucceeded');
    // The next reconcile: in sync (values unchanged), Remediated replaced by Released=True/UpgradeSucceeded.
    const readyAgain = {
      ...rolledBack,
      conditions: [
        cond('Ready', 'True', 'UpgradeSucceeded', 'Helm upgrade succeeded for release ns/app.v5 with chart app@1.0.0'),
        cond('Released', 'True', 'UpgradeSucceeded', 'Helm upgrade succeeded for release ns/app.v5 with chart app@1.0.0'),
      ],
    };
    failedWith(read(readyAgain), 'RollbackSucceeded');
    // Even where the failure count says nothing, the rollback entry does.
    failedWith(read(readyAgain, {}, record({ f: 5 })), 'RollbackSucceeded');
  });

  it('a stored failed upgrade with the default remediation: Stalled/RetriesExceeded, with Ready saying why', () => {
    const stalled = {
      ...before,
      lastHandledForceAt: AT,
      lastHandledReconcileAt: AT,
      lastAttemptedConfigDigest: NEW_VALUES,
      failures: 1,
      upgradeFailures: 1,
      history: [snap(4, 'failed', 'upgrade', NEW_VALUES), v3],
      conditions: [upgradeFailed('Ready'), upgradeFailed('Released'), cond('Stalled', 'True', 'RetriesExceeded', 'Failed to upgrade after 1 attempt(s)')],
    };
    const h = read(stalled);
    failedWith(h, 'RetriesExceeded');
    assert.match(h.state === 'failed' ? h.message : '', /Helm upgrade failed/);
    // Stalled alone (no failed entry, no count): still a failure once the request was handled.
    failedWith(read({ ...stalled, failures: 0, history: [v4, v3Superseded] }), 'RetriesExceeded');
  });

  it('tests enabled: awaiting tests is in progress, TestSuccess=False is a failure, TestSuccess=True a success', () => {
    const upgraded = { ...before, lastHandledForceAt: AT, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded] };
    const awaiting = { ...upgraded, conditions: [readyNew, releasedNew, cond('TestSuccess', 'Unknown', 'AwaitingTests'), cond('Reconciling', 'True', 'Progressing', "Running 'test' action")] };
    assert.deepEqual(read(awaiting, { test: true }), { state: 'progressing' });
    const testFailed = cond('TestSuccess', 'False', 'TestFailed', 'Helm test failed for release ns/app.v4 with chart app@1.0.0: pod app-test failed');
    const failedTests = {
      ...upgraded,
      lastHandledReconcileAt: AT,
      failures: 1,
      history: [snap(4, 'deployed', 'upgrade', NEW_VALUES, { 'app-test': { phase: 'Failed' } }), v3Superseded],
      conditions: [cond('Ready', 'False', 'TestFailed', testFailed.message), releasedNew, testFailed],
    };
    failedWith(read(failedTests, { test: true }), 'TestFailed');
    // With test.ignoreFailures Ready stays True; hrto's gate still does not pass failed tests.
    failedWith(read({ ...failedTests, failures: 0, conditions: [readyNew, releasedNew, testFailed] }, { test: true }), 'TestFailed');
    const passed = { ...upgraded, lastHandledReconcileAt: AT, conditions: [readyNew, releasedNew, cond('TestSuccess', 'True', 'TestSucceeded')] };
    assert.deepEqual(read(passed, { test: true }), { state: 'succeeded' });
    // Tests enabled, no TestSuccess at all: not a success.
    assert.deepEqual(read({ ...passed, conditions: [readyNew, releasedNew] }, { test: true }), { state: 'progressing' });
  });

  it('a stale Ready=True before the request is handled is in progress', () => {
    // Even with the new entry already in place (the action patch) and Reconciling gone missing.
    assert.deepEqual(read(before), { state: 'progressing' });
    assert.deepEqual(read({ ...before, history: [v4, v3Superseded], lastAttemptedConfigDigest: NEW_VALUES, conditions: [readyNew, releasedNew] }), { state: 'progressing' });
  });

  it('Ready for an older generation is in progress', () => {
    const done = { ...before, lastHandledReconcileAt: AT, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew] };
    assert.deepEqual(read(done, { generation: 3 }), { state: 'progressing' });
    const current = { ...done, conditions: [cond('Ready', 'True', 'UpgradeSucceeded', readyNew.message, 3), releasedNew] };
    assert.deepEqual(read(current, { generation: 3 }), { state: 'succeeded' });
  });

  it('failures reset by the values change, with a good new entry, is a success', () => {
    const done = { ...before, failures: 0, lastHandledReconcileAt: AT, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew] };
    assert.deepEqual(read(done, {}, record({ f: 2 })), { state: 'succeeded' });
    // More failures than before is not.
    failedWith(read({ ...done, failures: 3 }, {}, record({ f: 2 })), 'UpgradeFailed');
  });

  it('a new entry whose values are not the last attempted ones, or made by a rollback, is no success', () => {
    const done = { ...before, lastHandledReconcileAt: AT, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew] };
    assert.deepEqual(read({ ...done, lastAttemptedConfigDigest: `sha256:${'3'.repeat(64)}` }), { state: 'progressing' });
    assert.deepEqual(read({ ...done, history: [snap(4, 'deployed', '', NEW_VALUES), v3Superseded] }), { state: 'progressing' });
    assert.deepEqual(read({ ...done, history: [snap(4, 'pending-upgrade', 'upgrade', NEW_VALUES), v3Superseded] }), { state: 'progressing' });
  });

  it('in progress past --wave-timeout after the trigger is a failure, Timeout', () => {
    const waiting = { ...before, conditions: [cond('Ready', 'False', 'DependencyNotReady', "dependency 'ns/db' is not ready"), releasedOld, prerequisites] };
    assert.deepEqual(read(waiting, {}, record(), T0 + 14 * MIN), { state: 'progressing' });
    const h = read(waiting, {}, record(), T0 + 16 * MIN);
    failedWith(h, 'Timeout');
    assert.match(h.state === 'failed' ? h.message : '', /15m/);
    // The same once the request was handled but the reconcile keeps going.
    failedWith(read({ ...waiting, lastHandledReconcileAt: AT }, {}, record(), T0 + 16 * MIN), 'Timeout');
    // No timeout: never.
    assert.deepEqual(readHealth(hr(waiting), record(), T0 + 60 * MIN, 0), { state: 'progressing' });
    // A success seen late is a success.
    const done = { ...before, lastHandledReconcileAt: AT, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew] };
    assert.deepEqual(read(done, {}, record(), T0 + 60 * MIN), { state: 'succeeded' });
  });

  it('someone else requested a newer reconcile after ours: its handling stands for ours', () => {
    // requestedAt moved on past ours; neither request handled yet.
    assert.deepEqual(read(before, { requestedAt: LATER_AT }), { state: 'progressing' });
    // Ours handled, the newer one's reconcile running: wait for it.
    assert.deepEqual(read({ ...before, lastHandledReconcileAt: AT, conditions: [readyOld, releasedOld, prerequisites] }, { requestedAt: LATER_AT }), { state: 'progressing' });
    // Only the newer one handled (ours coalesced into it), with the upgrade: succeeded.
    const done = { ...before, lastHandledReconcileAt: LATER_AT, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew] };
    assert.deepEqual(read(done, { requestedAt: LATER_AT }), { state: 'succeeded' });
    // Handled without an upgrade (the newer request was not forced): the force never ran.
    failedWith(read({ ...before, lastHandledReconcileAt: LATER_AT }, { requestedAt: LATER_AT }), 'NoUpgrade');
    // A lastHandledReconcileAt that is neither ours nor the current request says nothing.
    assert.deepEqual(read({ ...done, lastHandledReconcileAt: OLD_AT }, { requestedAt: LATER_AT }), { state: 'progressing' });
  });

  it('a forced trigger handled without a new release (early exit, lock, drift) is a failure, NoUpgrade', () => {
    const h = read({ ...before, lastHandledReconcileAt: AT });
    failedWith(h, 'NoUpgrade');
    assert.match(h.state === 'failed' ? h.message : '', /v3/);
  });

  it('an unforced trigger: in sync without a new release is a success; a new release must be good', () => {
    const inSync = { ...before, lastHandledReconcileAt: AT };
    assert.deepEqual(read(inSync, {}, record({ force: false })), { state: 'succeeded' });
    // In sync needs the newest entry to carry the last attempted values.
    assert.deepEqual(read({ ...inSync, lastAttemptedConfigDigest: NEW_VALUES }, {}, record({ force: false })), { state: 'progressing' });
    const upgraded = { ...inSync, lastAttemptedConfigDigest: NEW_VALUES, history: [v4, v3Superseded], conditions: [readyNew, releasedNew] };
    assert.deepEqual(read(upgraded, {}, record({ force: false })), { state: 'succeeded' });
  });

  it('a first install counts as the new release', () => {
    const installed = {
      lastHandledReconcileAt: AT,
      lastAttemptedConfigDigest: NEW_VALUES,
      history: [snap(1, 'deployed', 'install', NEW_VALUES)],
      conditions: [cond('Ready', 'True', 'InstallSucceeded'), cond('Released', 'True', 'InstallSucceeded')],
    };
    assert.deepEqual(read(installed, {}, record({ v: 0 })), { state: 'succeeded' });
  });
});

describe('rollout record', () => {
  it('round-trips through the annotation value', () => {
    const r = record();
    const text = encodeRolloutRecord(r);
    assert.equal(text, `{"at":"${AT}","v":3,"f":0,"force":true,"src":{"ConfigMap/ns/cfg":"sha256:abcdefabcdef"}}`);
    assert.deepEqual(parseRolloutRecord(text), r);
    // Read back from a HelmRelease through toRelease.
    const release = toRelease({ metadata: { name: 'app', namespace: 'ns', annotations: { [keys.rolloutRecord]: text } } }, keys);
    assert.deepEqual(parseRolloutRecord(release.rolloutRecord), r);
  });

  it('tolerates garbage: undefined, never a throw', () => {
    for (const bad of [
      undefined,
      '',
      'not json',
      '[]',
      'null',
      '42',
      '{}',
      '{"at":"yesterday","v":1,"f":0,"force":true,"src":{}}',
      `{"at":"${AT}","v":-1,"f":0,"force":true,"src":{}}`,
      `{"at":"${AT}","v":1.5,"f":0,"force":true,"src":{}}`,
      `{"at":"${AT}","v":1,"f":"0","force":true,"src":{}}`,
      `{"at":"${AT}","v":1,"f":0,"src":{}}`,
      `{"at":"${AT}","v":1,"f":0,"force":"yes","src":{}}`,
      `{"at":"${AT}","v":1,"f":0,"force":true,"src":[]}`,
      `{"at":123,"v":1,"f":0,"force":true,"src":{}}`,
    ]) {
      assert.equal(parseRolloutRecord(bad), undefined, String(bad));
    }
  });

  it('keeps only string digests of src and accepts a missing src', () => {
    assert.deepEqual(parseRolloutRecord(`{"at":"${AT}","v":1,"f":0,"force":false,"src":{"a":"sha256:1","b":2}}`)?.src, { a: 'sha256:1' });
    assert.deepEqual(parseRolloutRecord(`{"at":"${AT}","v":1,"f":0,"force":false}`), { at: AT, v: 1, f: 0, force: false, src: {} });
  });
});

describe('snapshotBefore', () => {
  it('notes the highest history version and the failure count (zero when the trigger resets)', () => {
    assert.deepEqual(snapshotBefore(hr({ ...before, failures: 2 })), { v: 3, f: 2 });
    assert.deepEqual(snapshotBefore(hr({ ...before, failures: 2 }), true), { v: 3, f: 0 });
    assert.deepEqual(snapshotBefore(hr({ history: [snap(2, 'superseded', 'upgrade', OLD_VALUES), snap(7, 'failed', 'upgrade', NEW_VALUES)] })), { v: 7, f: 0 });
    assert.deepEqual(snapshotBefore(hr({})), { v: 0, f: 0 });
  });
});
