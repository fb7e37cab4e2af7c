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

  it('tells its version; a mistyped command is answered with the one it may mean', async () => {
    const { VERSION } = await import('../../src/version.js');
    for (const args of [['--version'], ['version']]) {
      const run = hrto(args);
      assert.equal(await run.code, 0, args[0]);
      assert.equal(run.stdout(), `hrto ${VERSION}\n`, args[0]);
    }
    const typo = hrto(['explian']);
    assert.equal(await typo.code, 1);
    assert.equal(typo.stderr(), 'hrto: unknown command "explian" (did you mean "explain"?); see hrto --help\n');
  });

  it('explain: its own flags first, with examples; -o yaml, --context, and clear errors without a kubeconfig or with a bad one', async () => {
    const help = hrto(['explain', '--help']);
    assert.equal(await help.code, 0);
    const text = help.stdout();
    const at = (flag: string) => text.indexOf(flag);
    for (const own of ['-n, --namespace', '-A, --all-namespaces', '-o, --output', '--context']) assert.ok(at(own) >= 0 && at(own) < at('--kubeconfig'), `${own} before the shared flags`);
    assert.match(text, /Examples:\n {2}# Every HelmRelease/);

    const kubeconfig = process.env.HRTO_TEST_KUBECONFIG!;
    const ns = `cli-${Date.now().toString(36)}`;
    const yaml = hrto(['explain', '--kubeconfig', kubeconfig, '-n', ns, '-o', 'yaml']);
    assert.equal(await yaml.code, 0, yaml.stderr());
    const { parse } = await import('yaml');
    assert.deepEqual(parse(yaml.stdout()), { releases: [], refused: [] });
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const context = hrto(['explain', '--kubeconfig', kubeconfig, '--context', kc.getCurrentContext(), '-n', ns, '-o', 'json']);
    assert.equal(await context.code, 0, context.stderr());
    const unknown = hrto(['explain', '--kubeconfig', kubeconfig, '--context', 'nope', '-n', ns]);
    assert.equal(await unknown.code, 1);
    assert.match(unknown.stderr(), /no context "nope" \(contexts: /);
    const both = hrto(['explain', '-n', ns, '-A']);
    assert.equal(await both.code, 2);

    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const home = mkdtempSync(`${tmpdir()}/hrto-home-`);
    const none = hrto(['explain'], { KUBECONFIG: '', HOME: home, KUBERNETES_SERVICE_HOST: '' });
    assert.equal(await none.code, 1);
    assert.equal(none.stderr(), `hrto explain: no kubeconfig found: no --kubeconfig, KUBECONFIG is not set, there is no ${home}/.kube/config, and this is not a pod with a service account; pass --kubeconfig or set KUBECONFIG\n`);
  });

  it('refuses invalid settings with exit code 2 and names each one', async () => {
    const run = hrto(['--trigger-mode=force', '--key-domain=Not_A_Domain'], { MAX_CONCURRENCY: 'many', CACHE_SYNC_TIMEOUT: '2 minutes', LOG_LEVEL: 'info' });
    assert.equal(await run.code, 2);
    const stderr = run.stderr();
    for (const word of ['MAX_CONCURRENCY', 'CACHE_SYNC_TIMEOUT', '--key-domain', '"2 minutes"']) assert.ok(stderr.includes(word), `${word} in ${stderr}`);
    const bad = hrto(['--trigger-mode=sometimes', '--watch-secrets', 'maybe']);
    assert.equal(await bad.code, 2);
    assert.match(bad.stderr(), /--trigger-mode: must be one of force, reconcile; got "sometimes"/);
    assert.match(bad.stderr(), /--watch-secrets: must be true or false, got "maybe"/);
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
