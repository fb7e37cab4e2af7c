// The hrto command itself: help, configuration errors, cache sync timeout, a real run with JSON logs,
// metrics and a graceful stop.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freePort } from '../harness/controlplane.js';
import { TriggerLog } from './hrto.js';
import { hrto, unreachableKubeconfig } from './process.js';
import { eventually, oneSource, patchConfigMap, waitForRecordedDigest } from './support.js';

describe('hrto command', () => {
  it('--help lists the flags and the environment variables', async () => {
    const run = hrto(['--help']);
    assert.equal(await run.code, 0);
    for (const word of ['--kubeconfig', '--key-domain', '--trigger-mode', '--max-concurrency', '--cache-sync-timeout', 'MAX_CONCURRENCY', 'CACHE_SYNC_TIMEOUT', 'LOG_LEVEL']) {
      assert.ok(run.stdout().includes(word), word);
    }
  });

  it('the bundle the image ships (dist/hrto.mjs) runs, and reads a kubeconfig in its worker', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { projectRoot } = await import('../harness/binaries.js');
    const run = promisify(execFile);
    const help = await run(process.execPath, ['dist/hrto.mjs', '--help'], { cwd: projectRoot });
    assert.match(help.stdout, /--max-triggers-per-second/);
    // explain connects through the kubeconfig worker and lists the caches once.
    const ns = `bundle-${Date.now().toString(36)}`;
    const explained = await run(process.execPath, ['dist/hrto.mjs', 'explain', '--kubeconfig', process.env.HRTO_TEST_KUBECONFIG!, '-n', ns, '-o', 'json'], { cwd: projectRoot });
    assert.deepEqual(JSON.parse(explained.stdout), { releases: [], refused: [] });
  });

  it('refuses invalid settings with exit code 2 and names each one', async () => {
    const run = hrto(['--trigger-mode=force', '--key-domain=Not_A_Domain'], { MAX_CONCURRENCY: 'many', CACHE_SYNC_TIMEOUT: '2 minutes', LOG_LEVEL: 'info' });
    assert.equal(await run.code, 2);
    const stderr = run.stderr();
    for (const word of ['MAX_CONCURRENCY', 'CACHE_SYNC_TIMEOUT', '--key-domain', '"2 minutes"']) assert.ok(stderr.includes(word), `${word} in ${stderr}`);
    const bad = hrto(['--trigger-mode=sometimes']);
    assert.notEqual(await bad.code, 0);
    assert.ok(bad.stderr().includes('sometimes'));
  });

  it('exits non-zero with a clear message when caches do not sync within CACHE_SYNC_TIMEOUT', async (t) => {
    const kubeconfig = await unreachableKubeconfig(t);
    const run = hrto(['--kubeconfig', kubeconfig, '--metrics-bind-address=0', '--health-probe-bind-address=0'], { CACHE_SYNC_TIMEOUT: '2s' });
    assert.equal(await run.code, 1);
    assert.match(run.stdout(), /caches not synced within 2s/);
  });

  it('runs against the cluster: triggers, logs JSON, serves metrics, stops gracefully on SIGTERM', async (t) => {
    const ns = await oneSource('cli-run');
    const triggers = await TriggerLog.start(ns);
    t.after(() => triggers.stop());
    const metricsPort = await freePort();
    const run = hrto(['--kubeconfig', process.env.HRTO_TEST_KUBECONFIG!, `--watch-namespaces=${ns}`, `--metrics-bind-address=127.0.0.1:${metricsPort}`, '--health-probe-bind-address=0', '--min-trigger-interval=0s'], {
      MAX_CONCURRENCY: '3',
      LOG_LEVEL: 'debug',
    });
    t.after(() => run.kill('SIGKILL'));
    await triggers.waitFor('app', 1); // first sight, content newer than the release
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { v: '2' } });
    await triggers.waitFor('app', 2);

    const metrics = await eventually('metrics', async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      const body = await res.text();
      return body.includes('hrto_triggers_total{result="success",mode="force"} 2') ? body : undefined;
    });
    assert.match(metrics, /process_resident_memory_bytes/);
    assert.match(metrics, /hrto_cache_synced\{informer="helmreleases\[cli-run-[0-9a-f]+\]"\} 1/);

    run.kill('SIGTERM');
    assert.equal(await run.code, 0);
    const lines = run.stdout().trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; workers?: number });
    assert.ok(lines.some((l) => l.msg === 'caches synced; reconciling' && l.workers === 3), 'MAX_CONCURRENCY applied');
    assert.ok(lines.some((l) => l.level === 20), 'LOG_LEVEL=debug applied');
    assert.ok(lines.some((l) => l.msg.startsWith('triggered HelmRelease')));
    assert.ok(lines.some((l) => l.msg.startsWith('stopping')));
  });
});
