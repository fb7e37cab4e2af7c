// hrto as users run it: the real command in its own process, its output captured.
import { spawn } from 'node:child_process';
import path from 'node:path';
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
