// The rollout's own costs, measured in process (no cluster needed; they are the controller's work,
// not the API server's):
//   inflight   --max-upgrades-in-flight with 10,000 cached releases and 300 triggers waiting for a
//              slot, each looking once a second (as the scheduler does): CPU per second of waiting,
//              counted as the informer delivers releases (src/rollout/inflight.ts) beside the rescan
//              of every cached release's record at each look that it replaced.
import { keysFor } from '../../src/keys.js';
import { InFlight } from '../../src/rollout/inflight.js';
import { parseRolloutRecord, readHealth } from '../../src/rollout/health.js';
import { toRelease } from '../../src/sources/objects.js';
import type { Figure } from '../figures.js';
import { type Ctx, say, type ScenarioResult, table } from '../lib.js';

const RELEASES = 10_000;
const WAITING = 300;
/** Releases whose trigger has no outcome yet: the limit's worth. */
const IN_FLIGHT = 10;
const TIMEOUT_MS = 15 * 60_000;

/** CPU milliseconds (user + system) `fn` takes, the best of `rounds` (the machine is shared). */
function cpuMs(fn: () => void, rounds = 5): number {
  let best = Infinity;
  for (let i = 0; i < rounds; i++) {
    const before = process.cpuUsage();
    fn();
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return best;
}

export const rolloutScenarios: Record<string, (ctx: Ctx) => Promise<ScenarioResult>> = {
  inflight() {
    const keys = keysFor();
    const now = Date.now();
    const at = new Date(now - 60_000).toISOString();
    // Every release was triggered once (every trigger leaves a record); IN_FLIGHT of them are still upgrading.
    const releases = Array.from({ length: RELEASES }, (_, i) =>
      toRelease(
        {
          metadata: {
            name: `r${i}`,
            namespace: 'bench',
            resourceVersion: '1',
            generation: 1,
            annotations: { [keys.rolloutRecord]: JSON.stringify({ at, v: 1, f: 0, force: true, src: { 'ConfigMap/bench/values': 'sha256:0123456789ab' } }) },
          },
          status: {
            lastHandledReconcileAt: i < IN_FLIGHT ? undefined : at,
            history: [{ version: i < IN_FLIGHT ? 1 : 2, status: 'deployed', action: 'upgrade', configDigest: 'sha256:c' }],
            lastAttemptedConfigDigest: 'sha256:c',
            conditions: [{ type: 'Ready', status: 'True', reason: 'UpgradeSucceeded', observedGeneration: 1 }],
          },
        },
        keys,
        true,
      ),
    );
    const tracker = new InFlight(() => true, TIMEOUT_MS);
    const fill = cpuMs(() => {
      for (const r of releases) tracker.set(r);
    }, 1);
    // One second of waiting: every waiting trigger looks once.
    const counted = cpuMs(() => {
      for (let i = 0; i < WAITING; i++) if (tracker.count(now) !== IN_FLIGHT) throw new Error('wrong count');
    });
    const rescan = cpuMs(() => {
      for (let i = 0; i < WAITING; i++) {
        let n = 0;
        for (const r of releases) {
          const record = parseRolloutRecord(r.rolloutRecord);
          if (record && readHealth(r, record, now, TIMEOUT_MS).state === 'progressing') n++;
        }
        if (n !== IN_FLIGHT) throw new Error(`wrong count ${n}`);
      }
    }, 2);
    table([
      { how: 'counted from informer events', 'CPU ms per second of waiting': counted.toFixed(2), 'one-time fill (10,000 events)': `${fill.toFixed(1)} ms` },
      { how: 'rescan of every record at each look (before)', 'CPU ms per second of waiting': rescan.toFixed(0), 'one-time fill (10,000 events)': '-' },
    ]);
    say(`${WAITING} waiting triggers over ${RELEASES.toLocaleString('en')} releases, ${IN_FLIGHT} in flight: ${(rescan / Math.max(counted, 0.001)).toFixed(0)}x less CPU`);
    const figures: Figure[] = [
      { scenario: 'inflight', figure: 'CPU per second, 300 triggers waiting over 10,000 releases (counted)', value: counted, unit: 'ms', baseline: { value: rescan, what: 'the rescan it replaced' }, ratio: counted / rescan },
    ];
    return Promise.resolve({ counted, rescan, fill, figures });
  },
};
