// The container image's files without a container runtime: the Dockerfile is read, the final
// stage's COPY lines are replayed into a folder from what the build stage produced (`npm run build`
// in this tree), and hrto is started as the ENTRYPOINT starts it. A Dockerfile change that forgets a
// runtime file therefore breaks a test, and the two cannot drift apart.
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './binaries.js';

export interface Stage {
  name: string | undefined;
  workdir: string;
  env: Record<string, string>;
  /** `intoDir`: the destination is a folder the sources go into (a trailing / or several sources). */
  copies: { from: string | undefined; sources: string[]; dest: string; intoDir: boolean }[];
  runs: string[];
  entrypoint: string[];
}

/** The instructions this reading understands; any other in the final stage fails the test loudly. */
const KNOWN = new Set(['FROM', 'WORKDIR', 'ENV', 'COPY', 'RUN', 'ENTRYPOINT', 'USER', 'EXPOSE', 'ARG', 'LABEL']);

export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  // Continuation lines joined, comments dropped.
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [instruction = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    const op = instruction.toUpperCase();
    if (!KNOWN.has(op)) throw new Error(`Dockerfile: ${op} is not understood by test/harness/image.ts; teach it before relying on it`);
    if (op === 'FROM') {
      const as = /\s+AS\s+(\S+)$/i.exec(args);
      stages.push({ name: as?.[1], workdir: '/', env: {}, copies: [], runs: [], entrypoint: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile: ${op} before FROM`);
    if (op === 'WORKDIR') stage.workdir = path.posix.resolve(stage.workdir, args);
    if (op === 'ENV') {
      const [key, ...value] = args.includes('=') ? args.split('=') : args.split(/\s+/);
      stage.env[key!] = value.join(args.includes('=') ? '=' : ' ');
    }
    if (op === 'RUN') stage.runs.push(args);
    if (op === 'ENTRYPOINT') stage.entrypoint = JSON.parse(args) as string[];
    if (op === 'COPY') {
      const words = rest.filter((w) => !w.startsWith('--chown') && !w.startsWith('--chmod'));
      const from = words[0]?.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
      const dest = words.pop()!;
      stage.copies.push({ from, sources: words, dest: path.posix.resolve(stage.workdir, dest), intoDir: dest.endsWith('/') || words.length > 1 });
    }
  }
  return stages;
}

export interface AssembledImage {
  /** The final stage's WORKDIR inside `root`: where the ENTRYPOINT runs. */
  workdir: string;
  /** ENTRYPOINT, its first word (node) replaced by this Node.js. */
  command: string[];
  env: Record<string, string>;
  /** Every file path placed, relative to root. */
  copied: string[];
}

/**
 * Replays the final stage into `root`. A `COPY --from=<build stage>` source is a path the build
 * stage produced under its WORKDIR: the same path in this tree once `npm run build` has run.
 */
export function assembleImage(root: string, dockerfile = path.join(projectRoot, 'Dockerfile')): AssembledImage {
  const stages = parseDockerfile(readFileSync(dockerfile, 'utf8'));
  const final = stages.at(-1)!;
  if (final.runs.length > 0) throw new Error(`the final stage runs commands (${final.runs.join('; ')}); this test cannot reproduce them`);
  const copied: string[] = [];
  for (const copy of final.copies) {
    const stage = copy.from === undefined ? undefined : stages.find((s) => s.name === copy.from);
    if (copy.from !== undefined && !stage) throw new Error(`COPY --from=${copy.from}: only earlier build stages are understood`);
    for (const source of copy.sources) {
      const relative = stage ? path.posix.relative(stage.workdir, path.posix.resolve(stage.workdir, source)) : source;
      if (relative.startsWith('..')) throw new Error(`COPY ${source}: outside the build stage's WORKDIR`);
      const from = path.join(projectRoot, relative);
      if (!existsSync(from)) throw new Error(`COPY ${source}: ${relative} does not exist in this tree (did npm run build run?)`);
      // A folder's contents, or a file, land at the destination, as COPY does.
      const dest = copy.intoDir && !statSync(from).isDirectory() ? path.posix.join(copy.dest, path.posix.basename(source)) : copy.dest;
      const to = path.join(root, dest);
      mkdirSync(path.dirname(to), { recursive: true });
      cpSync(from, to, { recursive: true });
      copied.push(path.posix.relative('/', dest));
    }
  }
  const [program, ...args] = final.entrypoint;
  if (program !== 'node') throw new Error(`ENTRYPOINT starts ${program}, not node`);
  return { workdir: path.join(root, final.workdir), command: [process.execPath, ...args], env: final.env, copied };
}
