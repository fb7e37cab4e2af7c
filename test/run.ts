// The test entry point. `npm test` runs everything, each part as soon as what it needs exists:
//   - the Go tools build in the background, one tools module after another (the control plane's
//     first, then helm/kustomize/actionlint, then Flux's controllers);
//   - meanwhile the bundle is built, then lint, type check and the unit tests run;
//   - the integration tests run in tiers, one after another, each once its binaries are built:
//     "core" (the control plane alone) while the other tools still build, then "deploy" (kustomize,
//     helm, actionlint), then "flux" (Flux's controllers). One control plane serves every tier
//     (node:test on Node 20 has no global setup).
//   node --import tsx test/run.ts [all|unit|integration] [file filter]
// HRTO_TEST_KUBECONFIG=<path> runs the integration tests against that cluster instead.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';
import { controlPlaneBinaries, deployBinaries, ensureBinaries, fluxBinaries, minutes, projectRoot } from './harness/binaries.js';
import { installHelmReleaseCrd } from './harness/cluster.js';
import { ControlPlane } from './harness/controlplane.js';

type Tier = 'core' | 'deploy' | 'flux';

/**
 * The tier an integration file belongs to, read from what it imports: Flux's controllers, or the
 * deploy tools (kustomize, helm, actionlint). Read, not listed, so a new file cannot land in a tier
 * whose tools may still be building and wait out its timeout there.
 */
function tierOf(source: string): Tier {
  if (/from '\.\.\/harness\/flux\.js'/.test(source)) return 'flux';
  if (/from '\.\.\/harness\/manifests\.js'|\bdeployBinaries\b/.test(source)) return 'deploy';
  return 'core';
}

const [which = 'all', filter] = process.argv.slice(2);
if (!['all', 'unit', 'integration'].includes(which)) {
  console.error(`usage: test/run.ts [all|unit|integration] [filter]; got ${which}`);
  process.exit(2);
}

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((entry) => {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) return testFiles(full);
      return entry.endsWith('.test.ts') ? [full] : [];
    })
    .filter((f) => !filter || f.includes(filter))
    .sort();
}

const started = Date.now();
const since = (): string => minutes((Date.now() - started) / 1000);
const setup = (msg: string): void => console.log(`[setup ${since()}] ${msg}`);

interface Outcome {
  name: string;
  ok: boolean;
  detail: string;
}

/** A child process whose output lines carry its name; resolves with how it ended. */
function runStep(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Outcome> {
  const child = spawn(command, args, { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let summary = '';
  const failed: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      if (/^ℹ (pass|fail) \d+$|^ℹ cancelled [1-9]\d*$/.test(line)) summary += `${line.slice(2)} `;
      // The spec reporter's ✖ lines: the failed and cancelled tests, named again in the summary.
      else if (/^\s*✖ /.test(line) && !/✖ failing tests:/.test(line) && !failed.includes(line.trim())) failed.push(line.trim());
      console.log(`[${name}] ${line}`);
    });
  }
  const t0 = Date.now();
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      const names = failed.length > 0 ? `\n${failed.map((f) => `         ${f}`).join('\n')}` : '';
      resolve({ name, ok: code === 0, detail: `${summary}in ${minutes((Date.now() - t0) / 1000)}${code === 0 ? '' : ` (exit ${code ?? signal})`}${names}` });
    }),
  );
}

const npm = (script: string): Promise<Outcome> => runStep(script, process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', '--silent', script]);

function nodeTest(name: string, files: readonly string[], env: NodeJS.ProcessEnv, concurrency: number): Promise<Outcome> {
  if (files.length === 0) return Promise.resolve({ name, ok: true, detail: 'no files' });
  const args = ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${process.env.HRTO_TEST_CONCURRENCY ?? concurrency}`, '--test-timeout=300000', ...files];
  return runStep(name, process.execPath, args, env);
}

const env: NodeJS.ProcessEnv = { ...process.env };
let controlPlane: ControlPlane | undefined;

/** Starts the control plane (or uses HRTO_TEST_KUBECONFIG's cluster) with Flux's HelmRelease CRD. */
async function cluster(): Promise<void> {
  if (!env.HRTO_TEST_KUBECONFIG) {
    controlPlane = new ControlPlane({ log: setup });
    await controlPlane.start();
    env.HRTO_TEST_KUBECONFIG = controlPlane.kubeconfigPath;
    env.HRTO_TEST_AUDIT_LOG = controlPlane.auditLogPath;
    setup(`control plane at ${controlPlane.apiserverUrl} (${controlPlane.dir})`);
  } else {
    setup(`using the existing cluster of HRTO_TEST_KUBECONFIG=${env.HRTO_TEST_KUBECONFIG}`);
  }
  const kc = new KubeConfig();
  kc.loadFromFile(env.HRTO_TEST_KUBECONFIG);
  const version = await kc.makeApiClient(VersionApi).getCode();
  const crdVersion = await installHelmReleaseCrd(kc);
  setup(`kube-apiserver ${version.gitVersion}, HelmRelease CRD from helm-controller ${crdVersion}`);
}

async function main(): Promise<Outcome[]> {
  const unitFiles = which === 'integration' ? [] : testFiles(path.join(projectRoot, 'test', 'unit'));
  const integrationFiles = which === 'unit' ? [] : testFiles(path.join(projectRoot, 'test', 'integration'));
  const tiers = new Map(integrationFiles.map((f) => [f, tierOf(readFileSync(f, 'utf8'))]));
  const tierFiles = (tier: Tier): string[] => integrationFiles.filter((f) => tiers.get(f) === tier);
  for (const tier of ['deploy', 'flux'] as const) {
    const names = tierFiles(tier).map((f) => path.basename(f));
    if (names.length > 0) setup(`tier ${tier}: ${names.join(', ')}`);
  }

  // The Go builds, one module after another: two at once only compete for the same cores.
  const tools = {
    core: tierFiles('core').length > 0 ? ensureBinaries(controlPlaneBinaries, setup) : undefined,
    deploy: undefined as Promise<unknown> | undefined,
    flux: undefined as Promise<unknown> | undefined,
  };
  if (integrationFiles.length > 0) {
    const chain = Promise.resolve(tools.core).catch(() => {});
    tools.deploy = chain.then(() => ensureBinaries(Object.values(deployBinaries), setup));
    const afterDeploy = tools.deploy.catch(() => {});
    tools.flux = tierFiles('flux').length > 0 ? afterDeploy.then(() => ensureBinaries(Object.values(fluxBinaries), setup)) : undefined;
  }

  // The bundle first (the integration tests run it), then the checks and the unit tests.
  const bundled = which === 'unit' ? Promise.resolve({ name: 'build', ok: true, detail: 'not needed' }) : npm('build');
  const checks = (async (): Promise<Outcome[]> => {
    const out = [await bundled];
    if (which === 'all') for (const script of ['lint', 'typecheck']) out.push(await npm(script));
    out.push(await nodeTest('unit', unitFiles, env, 2));
    return out;
  })();

  if (integrationFiles.length === 0) return checks;
  const failedSetup = (name: string, err: unknown): Outcome => ({ name, ok: false, detail: (err as Error).message });
  const clusterUp = Promise.resolve(tools.core).then(cluster);
  clusterUp.catch(() => {}); // each tier reports it
  // Tiers run one after another (each also waits for its tools): run side by side they loaded the
  // one API server enough to make timing-sensitive tests flaky, and the builds are the long pole.
  const tier = async (name: Tier, needs: Promise<unknown> | undefined, after: Promise<unknown>, concurrency: number): Promise<Outcome> => {
    try {
      await Promise.all([needs, clusterUp, bundled, after]);
    } catch (err) {
      return failedSetup(name, err);
    }
    setup(`tier ${name}: its tools are built; starting`);
    return nodeTest(name, tierFiles(name), env, concurrency);
  };
  const core = tier('core', tools.core, Promise.resolve(), 2);
  const deploy = tier('deploy', tools.deploy, core, 1);
  const flux = tier('flux', tools.flux, deploy, 1);
  const results = await Promise.all([checks, core, deploy, flux]);
  return results.flat();
}

let code = 1;
try {
  const outcomes = await main();
  console.log(`\nnpm test: ${since()} in all`);
  for (const o of outcomes) console.log(`  ${o.ok ? 'ok  ' : 'FAIL'} ${o.name.padEnd(10)} ${o.detail}`);
  code = outcomes.every((o) => o.ok) ? 0 : 1;
} catch (err) {
  console.error(err);
} finally {
  await controlPlane?.stop();
}
process.exit(code);
