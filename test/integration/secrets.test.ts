// Labeled Secrets trigger like ConfigMaps; their values never reach a log line or an Event.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixture } from './fixture.js';
import { events, metricValue, waitForEvent } from './hrto.js';
import { createHelmRelease, createSecret, eventually, NAMES, NAMESPACE, patchSecret, readSource, waitForRecordedDigest, WATCH_LABEL } from './support.js';

describe('secrets', () => {
  it('a labeled Secret change triggers its HelmRelease; no value appears in logs or Events', async (t) => {
    const { ns, triggers, hrto } = await fixture(t, 'sec-trigger');
    const first = 'first-S3cr3t-value-7f3a';
    const second = 'second-S3cr3t-value-9c1d';
    await createHelmRelease(ns, 'app');
    await createSecret(ns, 'creds', { password: first }, { labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: 'app', [NAMESPACE]: ns } });
    await waitForRecordedDigest(ns, 'creds', 30_000, 'Secret');
    await eventually('the Secret to be counted', async () => (await metricValue(hrto.metrics, 'hrto_watched_sources', { kind: 'Secret' })) === 1);

    await patchSecret(ns, 'creds', { stringData: { password: second } });
    await triggers.waitFor('app', 1);
    const digest = await waitForRecordedDigest(ns, 'creds', 30_000, 'Secret');
    const event = await waitForEvent(ns, { kind: 'HelmRelease', name: 'app', reason: 'Triggered' });
    assert.ok(event.message.includes(`Secret ${ns}/creds`) && event.message.includes(digest.slice(0, 19)), event.message);

    // Everything hrto said during the run (debug level) and every Event in the namespace.
    const said = JSON.stringify(hrto.logs) + JSON.stringify(await events(ns));
    for (const value of [first, second]) {
      for (const form of [value, Buffer.from(value).toString('base64')]) assert.ok(!said.includes(form), `a secret value leaked: ${form}`);
    }
    assert.ok(hrto.logs.some((l) => l.source === `Secret/${ns}/creds` && l.msg.startsWith('triggered')), 'the trigger is logged by name');
  });

  it('unlabeled Secrets are never cached', async (t) => {
    const { ns, hrto } = await fixture(t, 'sec-unlabeled');
    await createSecret(ns, 'plain', { token: 'x' });
    await createSecret(ns, 'watched', { token: 'y' }, { labels: { [WATCH_LABEL]: 'true' }, annotations: { [NAMES]: 'app', [NAMESPACE]: ns } });
    await eventually('the labeled Secret to be cached', async () => (await metricValue(hrto.metrics, 'hrto_watched_sources', { kind: 'Secret' })) === 1);
    assert.equal((await readSource('Secret', ns, 'plain')).annotations[NAMES], undefined);
  });
});
