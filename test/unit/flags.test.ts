// One table of flags (src/flags.ts): the defaults and the error messages come from it, the
// configuration reference and the chart's values are held equal to it, and every bad value is
// refused naming its flag and what is allowed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ConfigError, DEFAULTS, resolveConfig, type RawSettings } from '../../src/config.js';
import { FLAGS, flagHelp } from '../../src/flags.js';
import { missingKubeconfig } from '../../src/kube/connect.js';
import { suggest } from '../../src/suggest.js';
import { projectRoot } from '../harness/binaries.js';
import { REFERENCE, withReference } from '../../hack/flags-doc.js';

const problem = (settings: RawSettings): string => {
  try {
    resolveConfig(settings);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail(`accepted ${JSON.stringify(settings)}`);
};

describe('the flag table', () => {
  it('names every flag, key and chart value once', () => {
    for (const field of ['key', 'flag', 'chart'] as const) {
      const values = FLAGS.map((f) => f[field]).filter((v) => v !== undefined);
      assert.equal(new Set(values).size, values.length, `${field}s are unique`);
    }
    // Every default resolves: the table's defaults are a valid configuration.
    const config = resolveConfig({});
    assert.equal(config.debounceMs, 1000);
    assert.equal(DEFAULTS.waveTimeout, '15m');
  });

  it('is the configuration reference, docs/configuration.md (npm run -s docs:flags writes it)', () => {
    const readme = readFileSync(REFERENCE, 'utf8');
    assert.equal(withReference(readme), readme, 'docs/configuration.md differs from src/flags.ts: run npm run -s docs:flags');
  });

  it("gives the chart's values their defaults, and the chart passes each to its flag", () => {
    const chart = path.join(projectRoot, 'charts', 'helmrelease-trigger-operator');
    const values = parse(readFileSync(path.join(chart, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const deployment = readFileSync(path.join(chart, 'templates', 'deployment.yaml'), 'utf8');
    const asFlag = (v: unknown): string => (Array.isArray(v) ? (v.length === 0 ? '' : JSON.stringify(v)) : String(v));
    for (const f of FLAGS) {
      if (!f.chart) continue;
      assert.ok(f.chart in values, `values.yaml has ${f.chart}`);
      assert.equal(asFlag(values[f.chart]), f.default, `values.yaml ${f.chart} is ${f.flag}'s default`);
      assert.ok(deployment.includes(`.Values.${f.chart}`), `the deployment template passes ${f.chart}`);
    }
  });

  it('says which values a boolean or an enum allows, naming the flag', () => {
    assert.match(problem({ watchSecrets: 'maybe' }), /--watch-secrets: must be true or false, got "maybe"/);
    assert.match(problem({ triggerMode: 'sometimes' }), /--trigger-mode: must be one of force, reconcile; got "sometimes"/);
    assert.match(problem({ logLevel: 'loud' }), /--log-level \/ LOG_LEVEL: must be one of debug, info, warn, error; got "loud"/);
    assert.equal(resolveConfig({ dryRun: true, watchSecrets: 'false' }).watchSecrets, false);
  });

  it('prints every default one way: (default: X), with the environment variable and the choices', () => {
    const byFlag = new Map(FLAGS.map((f) => [f.flag, f]));
    assert.equal(flagHelp(byFlag.get('--watch-secrets')!), 'watch, read and patch labeled Secrets; false: ConfigMaps only, and no access to Secrets is needed (default: true)');
    assert.equal(flagHelp(byFlag.get('--log-level')!), 'the least severe log lines written [debug|info|warn|error] [env LOG_LEVEL] (default: info)');
    assert.equal(flagHelp(byFlag.get('--watch-label-selector')!).endsWith('(default: none)'), true);
  });
});

describe('the command line', () => {
  it('suggests the command a typo meant, and nothing for a word far from every command', () => {
    assert.equal(suggest('explian', ['explain', 'version']), 'explain');
    assert.equal(suggest('verison', ['explain', 'version']), 'version');
    assert.equal(suggest('deploy', ['explain', 'version']), undefined);
  });

  it('says where it looked when there is no kubeconfig', () => {
    const none = () => false;
    assert.match(missingKubeconfig(undefined, { HOME: '/home/u' }, none)!, /^no kubeconfig found: no --kubeconfig, KUBECONFIG is not set, there is no \/home\/u\/.kube\/config, and this is not a pod/);
    assert.equal(missingKubeconfig('/x/config', {}, none), '--kubeconfig /x/config: no such file');
    assert.equal(missingKubeconfig(undefined, { KUBECONFIG: `/a${path.delimiter}/b` }, none), 'KUBECONFIG names no file that exists (/a, /b)');
    assert.equal(missingKubeconfig(undefined, { KUBECONFIG: `/a${path.delimiter}/b` }, (f) => f === '/b'), undefined);
    assert.equal(missingKubeconfig(undefined, { HOME: '/home/u' }, (f) => f === '/home/u/.kube/config'), undefined);
  });
});
