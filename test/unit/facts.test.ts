// A release's rollout facts as the decision reads them, from cached releases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keysFor } from '../../src/keys.js';
import { namesContent, parseWave, rolloutChanged, rolloutFacts, type FactsContext, WaveError, windowsClosed } from '../../src/rollout/facts.js';
import { InFlight } from '../../src/rollout/inflight.js';
import { parseWindows } from '../../src/rollout/window.js';
import { toRelease } from '../../src/sources/objects.js';

const keys = keysFor();
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const SOURCE = 'ConfigMap/apps/shared';
const NOW = Date.parse('2026-11-30T12:00:00Z');
const ctx: FactsContext = { waveAnnotation: keys.wave, windowsAnnotation: keys.triggerWindows, triggerWindows: [], waveTimeoutMs: 600_000 };

const release = (annotations: Record<string, string>, status: Record<string, unknown> = {}, trackAll = false) =>
  toRelease({ metadata: { name: 'app', namespace: 'apps', resourceVersion: '1', generation: 1, annotations }, status }, keys, trackAll);
const record = (at: string, src: Record<string, string> = { [SOURCE]: DIGEST.slice(0, 19) }) => JSON.stringify({ at, v: 1, f: 0, force: true, src });

describe('rollout facts', () => {
  it('cost nothing for a release with no wave, no window and no record', () => {
    assert.equal(rolloutFacts(release({}), SOURCE, DIGEST, ctx, NOW), undefined);
  });

  it('read the wave, and fail closed on one that is not an integer', () => {
    assert.equal(rolloutFacts(release({ [keys.wave]: '2' }), SOURCE, DIGEST, ctx, NOW)?.wave, 2);
    assert.equal(rolloutFacts(release({ [keys.wave]: '-1' }), SOURCE, DIGEST, ctx, NOW)?.wave, -1);
    const bad = rolloutFacts(release({ [keys.wave]: 'one' }), SOURCE, DIGEST, ctx, NOW);
    assert.equal(bad?.wave, undefined);
    assert.match(bad?.invalid ?? '', /uburro.github.com\/wave: "one" is not an integer/);
    assert.throws(() => parseWave('1.5', 'w'), WaveError);
  });

  it('read windows from the annotation before the flag; [] opens what the flag closes', () => {
    const closed = { ...ctx, triggerWindows: parseWindows('[{"cron": "0 0 1 1 *", "window": "1m"}]', '--trigger-windows') };
    assert.deepEqual(rolloutFacts(release({}), SOURCE, DIGEST, closed, NOW)?.window, { open: false, opensAt: Date.parse('2027-01-01T00:00:00Z') });
    assert.equal(rolloutFacts(release({ [keys.triggerWindows]: '[]' }), SOURCE, DIGEST, closed, NOW)?.window, undefined);
    const open = rolloutFacts(release({ [keys.triggerWindows]: '[{"cron": "0 8 * * *", "timeZone": "Europe/Berlin", "window": "9h"}]' }), SOURCE, DIGEST, closed, NOW);
    assert.deepEqual(open?.window, { open: true });
    const unknownZone = rolloutFacts(release({ [keys.triggerWindows]: '[{"cron": "0 8 * * *", "timeZone": "Mars/Olympus", "window": "1h"}]' }), SOURCE, DIGEST, ctx, NOW);
    assert.match(unknownZone?.invalid ?? '', /Mars\/Olympus/);
  });

  it('tell the scheduler a trigger must not go: windows all closed, or unreadable', () => {
    const closed = { ...ctx, triggerWindows: parseWindows('[{"cron": "0 0 1 1 *", "window": "1m"}]', '--trigger-windows') };
    assert.equal(windowsClosed(release({}), ctx, NOW), false, 'no window: always open');
    assert.equal(windowsClosed(release({}), closed, NOW), true);
    assert.equal(windowsClosed(release({ [keys.triggerWindows]: '[]' }), closed, NOW), false);
    assert.equal(windowsClosed(release({ [keys.triggerWindows]: 'not json' }), ctx, NOW), true, 'fail closed');
    // A wave that cannot be read is held by the gate, which a source's plan may overrule: not the windows' business.
    assert.equal(windowsClosed(release({ [keys.wave]: 'one' }), ctx, NOW), false);
  });

  it('name one content for rollout-now and resume: 12 hex digits at least, a prefix of the digest', () => {
    assert.ok(namesContent(DIGEST.slice(0, 19), DIGEST));
    assert.ok(namesContent(` ${DIGEST} `, DIGEST));
    assert.ok(!namesContent(DIGEST.slice(0, 18), DIGEST), 'too short to name one content');
    assert.ok(!namesContent(`sha256:${'cd'.repeat(6)}`, DIGEST));
    assert.ok(!namesContent('true', DIGEST));
    assert.equal(rolloutFacts(release({ [keys.wave]: '1', [keys.rolloutNow]: DIGEST.slice(0, 19) }), SOURCE, DIGEST, ctx, NOW)?.now, true);
  });

  it("read the outcome only of a trigger that carried this source's content", () => {
    const at = '2026-11-30T11:59:00Z';
    const progressing = rolloutFacts(release({ [keys.wave]: '1', [keys.rolloutRecord]: record(at) }), SOURCE, DIGEST, ctx, NOW);
    assert.deepEqual(progressing?.outcome, { state: 'progressing', deadline: Date.parse(at) + 600_000 });
    const other = rolloutFacts(release({ [keys.wave]: '1', [keys.rolloutRecord]: record(at, { [SOURCE]: 'sha256:000000000000' }) }), SOURCE, DIGEST, ctx, NOW);
    assert.equal(other?.outcome, undefined, 'triggered for another content: this one is still to come');
    const timedOut = rolloutFacts(release({ [keys.wave]: '1', [keys.rolloutRecord]: record('2026-11-30T11:00:00Z') }), SOURCE, DIGEST, ctx, NOW);
    assert.equal(timedOut?.outcome?.state === 'failed' && timedOut.outcome.reason, 'Timeout');
  });

  it('count a tracked upgrade as in flight until it has an outcome or its timeout passes, as the cache delivers releases', () => {
    const at = '2026-11-30T11:59:00Z';
    const inFlight = new InFlight(() => true, ctx.waveTimeoutMs);
    const a = { ...release({ [keys.rolloutRecord]: record(at) }, {}, true), key: 'apps/a' };
    const b = { ...release({ [keys.rolloutRecord]: record(at) }, {}, true), key: 'apps/b' };
    inFlight.set(a);
    inFlight.set(b);
    inFlight.set({ ...release({}, {}, true), key: 'apps/never-triggered' });
    assert.equal(inFlight.count(NOW), 2);
    inFlight.set({ ...release({ [keys.rolloutRecord]: record(at) }, { failures: 1 }, true), key: 'apps/a' });
    assert.equal(inFlight.count(NOW), 1, 'a failed: it has an outcome');
    assert.ok(inFlight.has('apps/b', NOW));
    assert.equal(inFlight.count(Date.parse(at) + ctx.waveTimeoutMs + 1), 0, 'b timed out');
    assert.equal(inFlight.count(NOW), 0, 'and is forgotten');
    inFlight.set(b);
    inFlight.delete(b);
    assert.equal(inFlight.count(NOW), 0);
    const waved = new InFlight((r) => r.wave !== undefined, 0);
    waved.set(b);
    assert.equal(waved.count(NOW), 0, 'an unwaved release does not count without --max-upgrades-in-flight');
    waved.set({ ...release({ [keys.wave]: '1', [keys.rolloutRecord]: record(at) }), key: 'apps/w' });
    assert.equal(waved.count(Number.MAX_SAFE_INTEGER), 1, 'no timeout: in flight until an outcome');
  });

  it('wake the sources of a release when what a rollout reads of it changes, and only then', () => {
    const at = '2026-11-30T11:59:00Z';
    const waved = release({ [keys.wave]: '1', [keys.rolloutRecord]: record(at) });
    const handled = release({ [keys.wave]: '1', [keys.rolloutRecord]: record(at) }, { lastHandledReconcileAt: at });
    assert.ok(rolloutChanged(waved, handled), 'a status change of a tracked release');
    assert.ok(!rolloutChanged(waved, release({ [keys.wave]: '1', [keys.rolloutRecord]: record(at) })));
    assert.ok(rolloutChanged(release({}), release({ [keys.wave]: '1' })), 'a wave added');
    assert.ok(!rolloutChanged(release({}, { failures: 1 }), release({}, { failures: 2 })), 'an untracked release: status is not read');
    // hrto's own hold toggles spec.suspend, which bumps the generation: no decision changes with it.
    const at1 = (generation: number, suspend: boolean) =>
      toRelease({ metadata: { name: 'app', namespace: 'apps', resourceVersion: String(generation), generation, annotations: { [keys.wave]: '2' } }, spec: { suspend } }, keys);
    assert.ok(!rolloutChanged(at1(1, false), at1(2, true)), 'a suspension is not a rollout change');
    assert.ok(rolloutChanged(at1(1, false), at1(2, false)), 'a spec change from Git is');
  });
});
