import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { CoreV1Event } from '@kubernetes/client-node';
import { EventRecorder } from '../../src/events.js';
import type { KubeWriter } from '../../src/kube/client.js';
import { createLogger } from '../../src/log.js';

const release = { apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', namespace: 'apps', name: 'podinfo', uid: 'u1' };
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function recording(): { writer: KubeWriter; created: CoreV1Event[]; patched: { name: string; count: number | undefined }[] } {
  const created: CoreV1Event[] = [];
  const patched: { name: string; count: number | undefined }[] = [];
  const writer: KubeWriter = {
    patchRelease: () => Promise.resolve(),
    patchSource: () => Promise.resolve(),
    getSourceMetadata: () => Promise.resolve(undefined),
    createEvent: (_ns, event) => {
      created.push(event);
      return Promise.resolve();
    },
    patchEvent: (_ns, name, patch) => {
      patched.push({ name, count: patch.count });
      return Promise.resolve();
    },
  };
  return { writer, created, patched };
}

describe('EventRecorder', () => {
  it('a repeated Event bumps the count of the one it created; unique Events are created each time and do not push it out', async () => {
    const { writer, created, patched } = recording();
    const recorder = new EventRecorder(writer, createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })), 'pod-1');
    recorder.emit(release, 'Warning', 'TargetNotFound', 'HelmRelease apps/podinfo not found');
    await settle();
    // More unique Events than the recorder tracks: with them tracked, the warning would be forgotten.
    for (let i = 0; i < 5000; i++) recorder.emit(release, 'Normal', 'Triggered', `requested forced upgrade at ${i}`, {}, { unique: true });
    await settle();
    recorder.emit(release, 'Warning', 'TargetNotFound', 'HelmRelease apps/podinfo not found');
    await settle();
    assert.equal(created.length, 5001);
    assert.deepEqual(patched, [{ name: created[0]!.metadata.name, count: 2 }]);
    // A unique message emitted twice is two Events.
    recorder.emit(release, 'Normal', 'Triggered', 'requested forced upgrade at 0', {}, { unique: true });
    await settle();
    assert.equal(created.length, 5002);
    assert.equal(patched.length, 1);
  });
});
