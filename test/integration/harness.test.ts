// The harness cleans up after itself: no process and no directory outlive stop().
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ControlPlane } from '../harness/controlplane.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('control plane harness', () => {
  it('stop leaves no process and no temporary directory behind', async () => {
    const cp = new ControlPlane();
    await cp.start();
    const pids = cp.pids;
    assert.equal(pids.length, 2, 'etcd and kube-apiserver');
    assert.ok(pids.every(alive));
    assert.ok(existsSync(cp.kubeconfigPath));
    assert.equal((await cp.get('/readyz')).status, 200);
    await cp.stop();
    assert.deepEqual(pids.filter(alive), []);
    assert.equal(existsSync(cp.dir), false);
  });
});
