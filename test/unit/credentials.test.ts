import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CredentialsError, inClusterCredentials, inClusterServer, runsInCluster } from '../../src/kube/credentials.js';

function serviceAccountDir(t: { after: (fn: () => void) => void }, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hrto-sa-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
  return dir;
}

const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

describe('in-cluster credentials', () => {
  it('builds the server address as client-go does, IPv6 in brackets', () => {
    assert.equal(inClusterServer(env), 'https://10.96.0.1:443');
    assert.equal(inClusterServer({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }), 'https://[fd00::1]:6443');
    assert.equal(inClusterServer({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }), undefined);
  });

  it('reads the token and CA, and the token again only when asked (rotation)', async (t) => {
    const dir = serviceAccountDir(t, { token: 'first\n', 'ca.crt': 'CA' });
    const source = inClusterCredentials(env, dir);
    assert.equal(source.rotating, true);
    const first = await source.get(false);
    assert.deepEqual(first, { server: 'https://10.96.0.1:443', tls: { ca: 'CA' }, headers: { authorization: 'Bearer first' } });
    writeFileSync(path.join(dir, 'token'), 'second');
    assert.equal((await source.get(false)).headers.authorization, 'Bearer first');
    assert.equal((await source.get(true)).headers.authorization, 'Bearer second');
  });

  it('fails at once, naming the file, when the token is not mounted', (t) => {
    const dir = serviceAccountDir(t, { 'ca.crt': 'CA' });
    assert.throws(() => inClusterCredentials(env, dir), (err: unknown) => err instanceof CredentialsError && err.message.includes(path.join(dir, 'token')));
    assert.throws(() => inClusterCredentials({}, dir), CredentialsError);
  });

  it('applies only in a pod not pointed at a kubeconfig', (t) => {
    const dir = serviceAccountDir(t, { token: 't', 'ca.crt': 'CA' });
    assert.equal(runsInCluster(undefined, env, dir), true);
    assert.equal(runsInCluster('/some/kubeconfig', env, dir), false);
    assert.equal(runsInCluster(undefined, { ...env, KUBECONFIG: '/k' }, dir), false);
    assert.equal(runsInCluster(undefined, {}, dir), false);
    assert.equal(runsInCluster(undefined, env, path.join(dir, 'missing')), false);
  });
});
