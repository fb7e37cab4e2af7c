// The container image's own files, run the way a pod runs them: the Dockerfile's final stage is
// replayed into an empty folder (no node_modules, no sources), and hrto starts from there with the
// in-cluster configuration only (the rendered ServiceAccount's token and the CA in a mounted folder,
// KUBERNETES_SERVICE_HOST/PORT), rides out a token rotation that revokes the old token, and stops
// cleanly on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { assembleImage } from '../harness/image.js';
import { mountServiceAccount } from '../harness/incluster.js';
import { applyIdentity, NAME, SYSTEM_NAMESPACE } from '../harness/manifests.js';
import { TriggerLog } from './hrto.js';
import { auditedWrites, eventually, kc, needsAudit, oneSource, patchConfigMap, waitForRecordedDigest } from './support.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' });
}

/** What the API server answers a token on a read hrto's role allows: 200, or 401 once it is revoked. */
async function statusFor(token: string): Promise<number> {
  const cluster = kc.getCurrentCluster()!;
  const as = new KubeConfig();
  as.loadFromOptions({ clusters: [{ ...cluster }], users: [{ name: 't', token }], contexts: [{ name: 't', cluster: cluster.name, user: 't' }], currentContext: 't' });
  try {
    await as.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: SYSTEM_NAMESPACE, limit: 1 });
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

describe('the image, run as a pod runs it', () => {
  it("the final stage's files alone run hrto as the rendered ServiceAccount: a trigger, a revoked token rotated away, SIGTERM", needsAudit, async (t) => {
    const root = mkdtempSync(path.join(tmpdir(), 'hrto-image-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const image = assembleImage(root);
    assert.ok(image.copied.length > 0, 'the final stage copies something');
    const files = filesUnder(root);
    assert.ok(!files.some((f) => f.split(path.sep).includes('node_modules')), 'no node_modules: the bundle carries its production dependencies');
    assert.ok(!files.some((f) => f.endsWith('.ts')), 'no TypeScript sources');

    await applyIdentity(kc);
    const mount = await mountServiceAccount(kc, SYSTEM_NAMESPACE, NAME, false);
    t.after(() => mount.remove());
    const ns = await oneSource('image');
    // No kubeconfig anywhere: HOME is empty and KUBECONFIG unset, as in the image.
    const home = mkdtempSync(path.join(tmpdir(), 'hrto-home-'));
    t.after(() => rmSync(home, { recursive: true, force: true }));
    const [node, ...args] = image.command;
    const child = spawn(node!, [...args, `--watch-namespaces=${ns}`, `--leader-election-id=hrto-image-${ns}`, '--metrics-bind-address=0', '--health-probe-bind-address=0', '--min-trigger-interval=0s'], {
      cwd: image.workdir,
      env: { PATH: process.env.PATH ?? '', HOME: home, ...image.env, ...mount.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    await triggers.waitFor('app', 1);
    await waitForRecordedDigest(ns, 'values');

    // The kubelet rotates the bound token; the old one stops working (here: revoked at once).
    const old = mount.current;
    await mount.rotate();
    await old.revoke();
    // The API server caches a successful authentication for 10 s: then the old token is refused.
    await eventually('the old token to be refused', async () => (await statusFor(old.token)) === 401);
    assert.equal(await statusFor(mount.current.token), 200);
    await patchConfigMap(ns, 'values', { data: { v: '2' } });
    await triggers.waitFor('app', 2);
    await waitForRecordedDigest(ns, 'values');
    assert.equal(child.exitCode, null, 'the same process, never restarted');

    // Every patch came from the rendered ServiceAccount, named hrto in the audit log.
    const patches = auditedWrites({ verb: 'patch', resource: 'helmreleases', namespace: ns, name: 'app' });
    assert.equal(patches.length, 2);
    for (const p of patches) {
      assert.equal(p.user?.username, `system:serviceaccount:${SYSTEM_NAMESPACE}:${NAME}`);
      assert.match(p.userAgent ?? '', /^hrto\/\d+\.\d+\.\d+ /);
    }
    // In a pod, leader election is on by default, with the Lease in the pod's namespace.
    assert.equal(auditedWrites({ verb: 'create', resource: 'leases', namespace: SYSTEM_NAMESPACE, name: `hrto-image-${ns}` }).length, 1);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out.slice(-2000));
    assert.ok(out.includes('released the lease'), out.slice(-2000));
    assert.ok(!out.includes('"level":50'), `no error logged: ${out.slice(-2000)}`);
  });
});
