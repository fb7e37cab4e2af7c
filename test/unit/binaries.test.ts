import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goBinaryName } from '../harness/binaries.js';

describe('test tool binaries', () => {
  it('are found under the name go build -o dir/ gives them, a major version suffix skipped', () => {
    assert.equal(goBinaryName('k8s.io/kubernetes/cmd/kube-apiserver'), 'kube-apiserver');
    assert.equal(goBinaryName('go.etcd.io/etcd/server/v3'), 'server');
    assert.equal(goBinaryName('sigs.k8s.io/kustomize/kustomize/v5'), 'kustomize');
    assert.equal(goBinaryName('github.com/fluxcd/helm-controller'), 'helm-controller');
  });
});
