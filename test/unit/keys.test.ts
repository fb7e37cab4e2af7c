import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLabelKey, keysFor, LEGACY_WATCH_LABEL } from '../../src/keys.js';

describe('keys', () => {
  it('derives every key from the domain', () => {
    assert.deepEqual(keysFor('nebius.ai'), {
      domain: 'nebius.ai',
      watchLabel: 'nebius.ai/helmrelease-trigger-operator',
      watchLabels: ['nebius.ai/helmrelease-trigger-operator'],
      unwatchableLabels: [LEGACY_WATCH_LABEL],
      targetNames: 'nebius.ai/helmreleases-name',
      targetNamespace: 'nebius.ai/helmreleases-namespace',
      configDigest: 'nebius.ai/config-digest',
      keyDigests: 'nebius.ai/key-digests',
      autodiscovered: 'nebius.ai/autodiscovered',
      trigger: 'nebius.ai/trigger',
      keyHashes: 'nebius.ai/key-hashes',
      wave: 'nebius.ai/wave',
      triggerWindows: 'nebius.ai/trigger-windows',
      rolloutNow: 'nebius.ai/rollout-now',
      rolloutResume: 'nebius.ai/rollout-resume',
      rolloutRecord: 'nebius.ai/rollout',
      suspendedBy: 'nebius.ai/suspended-by',
      rolloutReported: 'nebius.ai/rollout-reported',
      rolloutPlan: 'nebius.ai/rollout-plan',
    });
    assert.equal(keysFor().watchLabel, 'uburro.github.com/helmrelease-trigger-operator');
  });
  it('validates label keys as Kubernetes does', () => {
    for (const ok of ['a', 'app.kubernetes.io/name', 'uburro.github.com/helmrelease-trigger-operator', 'x/Y_z.1']) assert.ok(isLabelKey(ok), ok);
    for (const bad of [LEGACY_WATCH_LABEL, '', '/a', 'a/', 'UPPER.com/a', '-a', `a/${'b'.repeat(64)}`]) assert.equal(isLabelKey(bad), false, bad);
  });
});
