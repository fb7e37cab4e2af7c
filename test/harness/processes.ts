// A group of child processes with their logs in one temporary directory. Stop ends exactly the
// processes it started (SIGTERM, then SIGKILL) and removes the directory; an exit or a signal of the
// test process does the same synchronously, so nothing outlives a failed or interrupted run.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const live = new Set<ProcessGroup>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // 'exit' handlers must be synchronous: kill what is left and remove the directories.
  process.on('exit', () => {
    for (const group of live) group.killNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const group of live) group.killNow();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port allocated'));
      });
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

export class ProcessGroup {
  readonly dir: string;
  private readonly processes: { name: string; child: ChildProcess; logFile: string; binary: string; args: string[]; env: NodeJS.ProcessEnv }[] = [];

  constructor(prefix: string) {
    this.dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
    installExitHooks();
    live.add(this);
  }

  get pids(): number[] {
    return this.processes.flatMap((p) => (p.child.pid ? [p.child.pid] : []));
  }

  /** Starts a process with its output in <dir>/<name>.log. */
  spawn(name: string, binary: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const logFile = path.join(this.dir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(binary, args, { stdio: ['ignore', fd, fd], cwd: this.dir, env });
    closeSync(fd);
    this.processes.push({ name, child, logFile, binary, args, env });
    return child;
  }

  /** Kills a process (SIGKILL: no goodbye) and starts it again with the same arguments. */
  async restart(name: string, downMs = 0): Promise<void> {
    const index = this.processes.findIndex((p) => p.name === name);
    const proc = this.processes[index];
    if (!proc) throw new Error(`no process ${name}`);
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
      proc.child.kill('SIGKILL');
      await exited;
    }
    this.processes.splice(index, 1);
    await sleep(downMs);
    this.spawn(name, proc.binary, proc.args, proc.env);
  }

  /** Polls `ready` until it holds; fails early, with the log's tail, if the process exits. */
  async waitFor(name: string, ready: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const proc = this.processes.find((p) => p.name === name);
    while (Date.now() < deadline) {
      if (proc && proc.child.exitCode !== null) {
        throw new Error(`${name} exited with ${proc.child.exitCode}:\n${tail(proc.logFile)}`);
      }
      if (await ready().catch(() => false)) return;
      await sleep(200);
    }
    throw new Error(`${name} not ready in time:\n${proc ? tail(proc.logFile) : ''}`);
  }

  logOf(name: string): string {
    const proc = this.processes.find((p) => p.name === name);
    return proc && existsSync(proc.logFile) ? readFileSync(proc.logFile, 'utf8') : '';
  }

  /** Stops the processes in reverse start order, then removes the directory. */
  async stop(): Promise<void> {
    for (const { child } of [...this.processes].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    this.removeDir();
    live.delete(this);
  }

  /** Synchronous last resort for process exit and signals. */
  killNow(): void {
    for (const { child } of this.processes) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    this.removeDir();
    live.delete(this);
  }

  private removeDir(): void {
    if (process.env.HRTO_KEEP_CONTROLPLANE) return;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
