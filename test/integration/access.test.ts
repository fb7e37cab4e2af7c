// "Know your own rights": hrto, run as a ServiceAccount missing a permission its flags need, says so
// at start and exits (or, for Events, runs without them), instead of retrying 403s forever.
// Each test makes its own identity: a ServiceAccount, a Role and a RoleBinding in its own namespace.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RbacAuthorizationV1Api, type V1PolicyRule } from '@kubernetes/client-node';
import { resolveConfig } from '../../src/config.js';
import { requiredAccess } from '../../src/kube/access.js';
import { FaultProxy } from '../harness/faultproxy.js';
import { can, serviceAccountKubeConfig } from '../harness/identity.js';
import { freePort } from '../harness/processes.js';
import { hrto, type LogLine, logLines, type Run, waitForLog } from './process.js';
import {
  auditEvents,
  auditLogPath,
  core,
  createConfigMap,
  createNamespace,
  eventually,
  getHelmRelease,
  kc,
  labeledConfigMap,
  oneSource,
  patchConfigMap,
  waitForRecordedDigest,
  REFUSED,
} from './support.js';

const HELM = 'helm.toolkit.fluxcd.io';
const SOURCES: V1PolicyRule = { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'patch'] };
const SECRETS: V1PolicyRule = { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'patch'] };
const RELEASES: V1PolicyRule = { apiGroups: [HELM], resources: ['helmreleases'], verbs: ['list', 'watch', 'patch'] };
const EVENTS: V1PolicyRule = { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] };

const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';

interface Identity {
  kubeconfig: string;
  username: string;
}

/**
 * A ServiceAccount in `ns` granted `rules` there (a Role: nothing cluster-scoped to clean up), and a
 * kubeconfig with its token. Returns once the API server's authorizer has seen the binding.
 */
async function identity(t: { after: (fn: () => void) => void }, ns: string, rules: V1PolicyRule[]): Promise<Identity> {
  const name = 'hrto-access';
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
  await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ kind: 'ServiceAccount', name, namespace: ns }] },
  });
  const sa = await serviceAccountKubeConfig(kc, ns, name);
  // RBAC is read from a cache: wait until the binding counts, or a review could still say no.
  const first = rules[0]!;
  await eventually('the Role binding to take effect', () => can(sa, first.verbs[0]!, first.resources![0]!, ns, first.apiGroups![0]));
  const dir = mkdtempSync(path.join(tmpdir(), 'hrto-access-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, sa.exportConfig(), { mode: 0o600 });
  return { kubeconfig, username: `system:serviceaccount:${ns}:${name}` };
}

/** hrto as that identity, watching `ns`; ports disabled unless given in `extra`. */
function runAs(t: { after: (fn: () => void) => void }, who: Identity, ns: string, extra: string[] = []): Run {
  const run = hrto(['--kubeconfig', who.kubeconfig, `--watch-namespaces=${ns}`, '--metrics-bind-address=0', '--health-probe-bind-address=0', ...extra]);
  t.after(() => run.kill('SIGKILL'));
  return run;
}

/** The exit code, or a failure if the process is still running after `ms`. */
async function exitWithin(run: Run, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms / 1000}s; output: ${run.stdout().slice(-1500)}`)), ms);
  });
  try {
    return await Promise.race([run.code, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every line the process printed, stdout and stderr, that speaks of a refused request. */
const refusals = (run: Run): string[] => `${run.stdout()}\n${run.stderr()}`.split('\n').filter((l) => REFUSED.test(l));

/** Lists and watches the API server saw from this identity in `ns` (the test control plane audits both). */
const informerRequests = (who: Identity, ns: string): string[] =>
  auditEvents(ns)
    .filter((e) => e.user?.username === who.username && (e.verb === 'list' || e.verb === 'watch'))
    .map((e) => `${e.verb} ${e.objectRef?.resource ?? ''} ${e.responseStatus?.code ?? ''}`);

const errorLines = (run: Run): LogLine[] => logLines(run).filter((l) => l.level === 50);

describe('startup access check', () => {
  it('an identity that may not patch HelmReleases: exit 1 at once, naming verb, resource, group and namespace; no informer started', async (t) => {
    const ns = await createNamespace('access-patch');
    const who = await identity(t, ns, [SOURCES, SECRETS, { ...RELEASES, verbs: ['list', 'watch'] }, EVENTS]);
    const started = Date.now();
    const run = runAs(t, who, ns);
    assert.equal(await exitWithin(run, 30_000), 1, run.stdout());
    t.diagnostic(`exited 1 after ${Date.now() - started} ms, saying:`);
    for (const line of errorLines(run)) t.diagnostic(JSON.stringify(line));

    const missing = errorLines(run).filter((l) => l.verb !== undefined);
    assert.deepEqual(
      missing.map((l) => [l.verb, l.group, l.resource, l.namespace, l.msg]),
      [['patch', HELM, 'helmreleases', ns, `cannot patch helmreleases.${HELM} in namespace ${ns} (needed for the trigger patch); grant it`]],
    );
    assert.ok(errorLines(run).some((l) => l.msg.startsWith('not starting')), 'a closing line says hrto does not start');
    assert.deepEqual(refusals(run), [], 'no request was refused');
    assert.ok(!logLines(run).some((l) => /caches synced/.test(l.msg)), 'never reached "caches synced"');
    if (auditLogPath) assert.deepEqual(informerRequests(who, ns), [], 'no list or watch was even tried');
  });

  it('asked cluster-wide with only a Role: the error says "cluster-wide" and points at --watch-namespaces', async (t) => {
    const ns = await createNamespace('access-wide');
    const who = await identity(t, ns, [SOURCES, SECRETS, RELEASES, EVENTS]);
    const run = hrto(['--kubeconfig', who.kubeconfig, '--metrics-bind-address=0', '--health-probe-bind-address=0']);
    t.after(() => run.kill('SIGKILL'));
    assert.equal(await exitWithin(run, 30_000), 1, run.stdout());
    const lines = errorLines(run).filter((l) => l.verb !== undefined);
    // Every cluster-wide need is denied (the Role counts in its namespace only); Events are optional.
    assert.equal(lines.length, 11, lines.map((l) => l.msg).join('\n'));
    assert.ok(lines.every((l) => l.namespace === '*' && l.msg.includes('in any namespace (cluster-wide)') && l.msg.includes('--watch-namespaces')));
    assert.ok(lines.some((l) => l.msg.startsWith('cannot list configmaps in any namespace (cluster-wide) (needed for the informer of labeled ConfigMaps)')));
    assert.deepEqual(refusals(run), []);
  });

  it('an identity without Secrets: exit 1 naming secrets and --watch-secrets=false; with --watch-secrets=false it starts and is ready', async (t) => {
    const ns = await createNamespace('access-secrets');
    const who = await identity(t, ns, [SOURCES, RELEASES, EVENTS]);
    const refused = runAs(t, who, ns);
    assert.equal(await exitWithin(refused, 30_000), 1, refused.stdout());
    const missing = errorLines(refused).filter((l) => l.verb !== undefined);
    assert.deepEqual(missing.map((l) => `${l.verb as string} ${l.resource as string}`).sort(), ['get secrets', 'list secrets', 'patch secrets', 'watch secrets']);
    for (const line of missing) assert.match(line.msg, new RegExp(`^cannot ${line.verb as string} secrets in namespace ${ns} \\(needed for .*\\); grant it, or run with --watch-secrets=false`));
    assert.deepEqual(refusals(refused), []);
    if (auditLogPath) assert.deepEqual(informerRequests(who, ns), [], 'the refused run tried no list or watch');

    const port = await freePort();
    const run = runAs(t, who, ns, ['--watch-secrets=false', `--health-probe-bind-address=127.0.0.1:${port}`]);
    await eventually('ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 60_000);
    await waitForLog(run, 'caches synced', (l) => l.msg === 'caches synced; reconciling');
    assert.ok(!logLines(run).some((l) => l.level >= 40), `no warning or error: ${run.stdout()}`);
    assert.deepEqual(refusals(run), []);
    // The same filter sees this identity's informers once it has started: the checks above can fail.
    if (auditLogPath) assert.ok(informerRequests(who, ns).some((r) => r.startsWith('list configmaps 200')), informerRequests(who, ns).join(', '));
  });

  it('an identity without Events: starts, warns once per permission, runs without Events, and still triggers', async (t) => {
    const ns = await oneSource('access-events');
    const who = await identity(t, ns, [SOURCES, SECRETS, RELEASES]);
    const [port, metricsPort] = [await freePort(), await freePort()];
    // No minimum interval: the change below triggers at once, not 30 s after the first trigger.
    const run = runAs(t, who, ns, ['--min-trigger-interval=0s', `--health-probe-bind-address=127.0.0.1:${port}`, `--metrics-bind-address=127.0.0.1:${metricsPort}`]);
    const get = async (p: string): Promise<{ status: number; body: string }> => {
      const res = await fetch(`http://127.0.0.1:${p.startsWith('/metrics') ? metricsPort : port}${p}`);
      return { status: res.status, body: await res.text() };
    };
    await eventually('ready', async () => (await get('/readyz')).status === 200, 60_000);

    const warnings = logLines(run).filter((l) => l.level === 40);
    for (const line of warnings) t.diagnostic(JSON.stringify(line));
    assert.deepEqual(
      warnings.map((l) => l.msg),
      [
        `cannot create events in namespace ${ns} (needed for recording Events); hrto runs without events in namespace ${ns}`,
        `cannot patch events in namespace ${ns} (needed for counting repeats of an Event); hrto runs without events in namespace ${ns}`,
      ],
    );
    const metrics = (await get('/metrics')).body;
    for (const verb of ['create', 'patch']) {
      assert.match(metrics, new RegExp(`^hrto_missing_permissions\\{verb="${verb}",resource="events",namespace="${ns}",feature="events"\\} 1$`, 'm'));
    }
    // One review per permission, and no more: the check is cheap.
    const expected = requiredAccess(resolveConfig({ watchNamespaces: ns })).length;
    assert.match(metrics, new RegExp(`^rest_client_requests_total\\{verb="create",resource="selfsubjectaccessreviews",code="201"\\} ${expected}$`, 'm'));

    assert.deepEqual(await get('/readyz'), { status: 200, body: 'ok\n' });
    assert.deepEqual(await get('/readyz?verbose'), {
      status: 200,
      body: `[+]informers-synced ok\n[+]events disabled: cannot create events in namespace ${ns}; cannot patch events in namespace ${ns}\nreadyz check passed\n`,
    });
    assert.equal((await get('/healthz')).body, 'ok\n');

    // The first sight of the ConfigMap (newer than the release) triggers; so does a change.
    await waitForRecordedDigest(ns, 'values');
    const first = (await getHelmRelease(ns, 'app')).metadata.annotations?.[REQUESTED_AT];
    assert.ok(first, 'triggered on first sight');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'replicas: 2\n' } });
    await eventually('the change to trigger app', async () => (await getHelmRelease(ns, 'app')).metadata.annotations?.[REQUESTED_AT] !== first);
    await waitForRecordedDigest(ns, 'values');
    // A source naming a missing release would emit a TargetNotFound Event: dropped, not refused.
    await createConfigMap(labeledConfigMap(ns, 'orphan', { targets: 'absent', targetNamespace: ns }));
    await waitForLog(run, 'the missing target reported', (l) => l.msg === 'target HelmReleases not found; will retry' && l.source === `ConfigMap/${ns}/orphan`);

    assert.deepEqual(refusals(run), [], 'no request was refused');
    assert.ok(!logLines(run).some((l) => l.msg === 'cannot write Event'), 'no Event was attempted');
    assert.deepEqual((await core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.source?.component === 'helmrelease-trigger-operator'), []);
  });

  it('a review the API server cannot answer (404: no such API; 403: reviews refused) only warns: hrto starts as before', async (t) => {
    const ns = await oneSource('access-unchecked');
    const proxy = new FaultProxy(kc.getCurrentCluster()!.server, kc.getCurrentUser()!.token!);
    await proxy.start();
    t.after(() => proxy.stop());
    const dir = mkdtempSync(path.join(tmpdir(), 'hrto-access-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, proxy.kubeConfig().exportConfig(), { mode: 0o600 });
    // Every review of a run fails (the first failure decides; the others still go out).
    const reviews = requiredAccess(resolveConfig({ watchNamespaces: ns })).length;
    for (const status of [404, 403]) {
      proxy.inject({ method: 'POST', path: /\/selfsubjectaccessreviews$/, status, times: reviews });
      const run = runAs(t, { kubeconfig, username: 'admin' }, ns);
      await waitForLog(run, 'caches synced', (l) => l.msg === 'caches synced; reconciling');
      const warning = logLines(run).find((l) => l.msg.startsWith('cannot check permissions at start'));
      assert.ok(warning && String(warning.err).includes(` ${status} `), `a warning naming ${status}: ${run.stdout()}`);
      assert.deepEqual(errorLines(run), []);
      // Working as ever: the source's first sight triggers its release, then its digest is recorded.
      await waitForRecordedDigest(ns, 'values');
      run.kill('SIGTERM');
      assert.equal(await exitWithin(run, 30_000), 0);
    }
    assert.equal(proxy.injected.length, 2 * reviews, proxy.injected.join(', '));
  });
});
