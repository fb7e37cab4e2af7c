// hrto as users run it: the real command in its own process, its output captured.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../harness/processes.js';
import { projectRoot } from '../harness/binaries.js';

export interface Run {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  kill: (signal: NodeJS.Signals) => void;
}

export function hrto(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'cli.ts'), ...args], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return {
    code: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    stdout: () => out,
    stderr: () => err,
    kill: (signal) => child.kill(signal),
  };
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** The JSON log lines the process printed so far. */
export function logLines(run: Run): LogLine[] {
  return run
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** The common flags of a test run against the test cluster; ports disabled unless given. */
export function clusterArgs(ns: string, extra: string[] = []): string[] {
  return [
    '--kubeconfig',
    process.env.HRTO_TEST_KUBECONFIG!,
    `--watch-namespaces=${ns}`,
    '--metrics-bind-address=0',
    '--health-probe-bind-address=0',
    ...extra,
  ];
}

/** A kubeconfig naming a loopback port nothing listens on; removed after the test. */
export async function unreachableKubeconfig(t: { after: (fn: () => void) => void }): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hrto-unreachable-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'kubeconfig');
  const port = await freePort();
  writeFileSync(
    file,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n`,
  );
  return file;
}

/** Leader election with a lease short enough for a failover test: a standby takes over within seconds. */
export function fastLeaderElection(ns: string): string[] {
  return ['--leader-elect', `--leader-election-namespace=${ns}`, '--leader-elect-lease-duration=4s', '--leader-elect-renew-deadline=3s', '--leader-elect-retry-period=500ms'];
}

/** Two replicas with leader election: the first leads, the second has synced and campaigns. */
export async function leaderAndStandby(t: { after: (fn: () => void) => void }, args: string[]): Promise<{ leader: Run; standby: Run }> {
  const leader = hrto(args);
  t.after(() => leader.kill('SIGKILL'));
  await waitForLog(leader, 'the first to lead', (l) => l.msg === 'became the leader');
  const standby = hrto(args);
  t.after(() => standby.kill('SIGKILL'));
  await waitForLog(standby, 'the second to campaign', (l) => l.msg === 'caches synced; campaigning for leadership');
  return { leader, standby };
}

export async function waitForLog(run: Run, what: string, match: (l: LogLine) => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!logLines(run).some(match)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr: ${run.stderr().slice(-500)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
