// A process's memory and CPU read from /proc, never from its own /metrics (a scrape allocates and
// runs code in the measured process). Linux only.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const MiB = 2 ** 20;

let clockTicks: number | undefined;
/** `getconf CLK_TCK`: the unit of utime and stime in /proc/<pid>/stat. */
export function clkTck(): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  return clockTicks;
}

/** VmRSS (resident now) and VmHWM (resident peak since start or the last resetPeak), in MiB. */
export function memory(pid: number): { rssMiB: number; hwmMiB: number; anonMiB: number; fileMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const mibOf = (field: string) => (kib(field) * 1024) / MiB;
  // RssAnon: the heaps (V8's, malloc's); RssFile: pages of the node binary and libraries touched.
  return { rssMiB: mibOf('VmRSS'), hwmMiB: mibOf('VmHWM'), anonMiB: mibOf('RssAnon'), fileMiB: mibOf('RssFile') };
}

/** utime + stime of the process itself (not its children), in seconds. */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/**
 * utime + stime of the process's main thread alone: the rest of cpuSeconds is its other threads
 * (for Node.js, V8's background compiler and GC helpers, libuv's pool).
 */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuSeconds(file: string): number {
  const stat = readFileSync(file, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the ')' the fields start at 3 (state): utime is field 14, stime field 15.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  return (utime + stime) / clkTck();
}

/** Resets VmHWM to the current RSS (Linux >= 4.0: `echo 5 > /proc/<pid>/clear_refs`). False if refused. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * VmRSS sampled every `intervalMs` during a phase. `stop` gives the sampled maximum and, when the
 * kernel's peak could be reset at the start, VmHWM over the phase (which also catches peaks between
 * samples).
 */
export class RssSampler {
  private readonly timer: NodeJS.Timeout;
  private readonly hwmReset: boolean;
  readonly samples: { atMs: number; rssMiB: number }[] = [];
  private readonly started = Date.now();
  max = 0;
  /** The split of the highest sample. */
  private atMax = { anonMiB: NaN, fileMiB: NaN };

  constructor(
    private readonly pid: number,
    intervalMs = 50,
  ) {
    this.hwmReset = resetPeak(pid);
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    try {
      const { rssMiB, anonMiB, fileMiB } = memory(this.pid);
      this.samples.push({ atMs: Date.now() - this.started, rssMiB });
      if (rssMiB > this.max) {
        this.max = rssMiB;
        this.atMax = { anonMiB, fileMiB };
      }
    } catch {
      // the process is gone
    }
  }

  stop(): { maxMiB: number; hwmMiB: number | undefined; samples: number; maxAnonMiB: number; maxFileMiB: number } {
    clearInterval(this.timer);
    this.sample();
    let hwmMiB: number | undefined;
    if (this.hwmReset) {
      try {
        hwmMiB = memory(this.pid).hwmMiB;
      } catch {
        hwmMiB = undefined;
      }
    }
    return { maxMiB: this.max, hwmMiB, samples: this.samples.length, maxAnonMiB: this.atMax.anonMiB, maxFileMiB: this.atMax.fileMiB };
  }
}

/** SIGTERM, then SIGKILL after 40 s; resolves when the child has exited (at once if it had). */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  await exited;
  clearTimeout(timer);
}

/** SIGKILL, if still running. */
export function killChild(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
