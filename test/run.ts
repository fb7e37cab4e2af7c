// The test entry point: one real control plane serves the whole run (node:test on Node 20 has no
// global setup), then Node's test runner runs the unit and integration files against it.
//   node --import tsx test/run.ts [unit|integration] [file filter]
// HRTO_TEST_KUBECONFIG=<path> runs the integration tests against that cluster instead.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { deployBinaries, ensureBinaries, fluxBinaries, projectRoot } from './harness/binaries.js';
import { installHelmReleaseCrd } from './harness/cluster.js';
import { ControlPlane } from './harness/controlplane.js';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';

const suites = ['unit', 'integration'] as const;
const [which, filter] = process.argv.slice(2);
const selected = suites.filter((s) => !which || which === 'all' || which === s);
if (selected.length === 0) {
  console.error(`usage: test/run.ts [unit|integration|all] [filter]; got ${which}`);
  process.exit(2);
}

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return testFiles(full);
    return entry.endsWith('.test.ts') ? [full] : [];
  });
}

const files = selected
  .flatMap((suite) => testFiles(path.join(projectRoot, 'test', suite)))
  .filter((f) => !filter || f.includes(filter))
  .sort();

const log = (msg: string): void => console.log(`[controlplane] ${msg}`);
const env: NodeJS.ProcessEnv = { ...process.env };
let controlPlane: ControlPlane | undefined;

async function main(): Promise<number> {
  if (selected.includes('integration')) {
    // Built once per pinned version: one go build per tools module, one module after the other.
    await ensureBinaries([...Object.values(deployBinaries), ...Object.values(fluxBinaries)], log);
    if (!env.HRTO_TEST_KUBECONFIG) {
      const started = Date.now();
      controlPlane = new ControlPlane({ log });
      await controlPlane.start();
      env.HRTO_TEST_KUBECONFIG = controlPlane.kubeconfigPath;
      env.HRTO_TEST_AUDIT_LOG = controlPlane.auditLogPath;
      log(`started in ${((Date.now() - started) / 1000).toFixed(1)}s at ${controlPlane.apiserverUrl} (${controlPlane.dir})`);
    } else {
      log(`using the existing cluster of HRTO_TEST_KUBECONFIG=${env.HRTO_TEST_KUBECONFIG}`);
    }
    const kc = new KubeConfig();
    kc.loadFromFile(env.HRTO_TEST_KUBECONFIG);
    const version = await kc.makeApiClient(VersionApi).getCode();
    const crdVersion = await installHelmReleaseCrd(kc);
    log(`kube-apiserver ${version.gitVersion}, HelmRelease CRD from helm-controller ${crdVersion}`);
  }
  const args = [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${process.env.HRTO_TEST_CONCURRENCY ?? '2'}`,
    '--test-timeout=300000',
    ...files,
  ];
  const child = spawn(process.execPath, args, { stdio: 'inherit', env, cwd: projectRoot });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(err);
} finally {
  await controlPlane?.stop();
}
process.exit(code);
