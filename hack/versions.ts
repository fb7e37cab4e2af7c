// One version names a release everywhere: package.json (hrto --version, the User-Agent), the chart's
// version and appVersion (the image tag it installs), the kustomize default image tag, the README's
// install commands, and the git
// tag that publishes it. The release workflow and a test check they agree; `set` moves them together.
//   node --import tsx hack/versions.ts check [vX.Y.Z]     exit 1 when any disagrees
//   node --import tsx hack/versions.ts set X.Y.Z          rewrite every place
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where a version is written, how to read it, and how to rewrite it. */
interface Place {
  name: string;
  file: string;
  read(text: string): string | undefined;
  write(text: string, version: string): string;
}

const CHART = 'charts/helmrelease-trigger-operator';

const places: Place[] = [
  {
    name: 'package.json version',
    file: 'package.json',
    read: (text) => (JSON.parse(text) as { version?: string }).version,
    write: (text, v) => text.replace(/^(\s*"version":\s*")[^"]*(")/m, `$1${v}$2`),
  },
  {
    name: 'package-lock.json version',
    file: 'package-lock.json',
    read: (text) => (JSON.parse(text) as { version?: string }).version,
    // The lock names the package twice: at its top and as the root entry of "packages".
    write: (text, v) => text.replace(/^( {2}"version":\s*")[^"]*(")/m, `$1${v}$2`).replace(/^( {6}"version":\s*")[^"]*(")/m, `$1${v}$2`),
  },
  {
    name: 'chart version',
    file: `${CHART}/Chart.yaml`,
    read: (text) => (parse(text) as { version?: string }).version,
    write: (text, v) => text.replace(/^version: .*$/m, `version: ${v}`),
  },
  {
    name: 'chart appVersion',
    file: `${CHART}/Chart.yaml`,
    read: (text) => (parse(text) as { appVersion?: string }).appVersion,
    write: (text, v) => text.replace(/^appVersion: .*$/m, `appVersion: "${v}"`),
  },
  {
    name: 'README install commands',
    file: 'README.md',
    // The chart's --version and the kustomize ref name the same release; a disagreement reads as none.
    read: (text) => {
      const chart = /--version (\S+)/.exec(text)?.[1];
      const ref = /\?ref=v([^'\s]+)/.exec(text)?.[1];
      return chart === ref ? chart : undefined;
    },
    write: (text, v) => text.replace(/(--version )\S+/, `$1${v}`).replace(/(\?ref=v)[^'\s]+/, `$1${v}`),
  },
  {
    name: 'kustomize image tag',
    file: 'config/manager/kustomization.yaml',
    read: (text) => (parse(text) as { images?: { newTag?: string }[] }).images?.[0]?.newTag,
    write: (text, v) => text.replace(/^(\s*newTag:\s*).*$/m, `$1${v}`),
  },
];

export interface Found {
  name: string;
  file: string;
  version: string | undefined;
}

export function readVersions(dir = root): Found[] {
  return places.map((p) => ({ name: p.name, file: p.file, version: p.read(readFileSync(path.join(dir, p.file), 'utf8')) }));
}

/** What disagrees with the package's version (and with the tag, when given); empty when all agree. */
export function disagreements(found: readonly Found[], tag?: string): string[] {
  const expected = found[0]?.version;
  const problems = found.filter((f) => f.version !== expected).map((f) => `${f.name} (${f.file}) is ${f.version ?? 'missing'}, package.json says ${expected}`);
  if (tag !== undefined && tag !== `v${expected}`) problems.push(`tag ${tag} is not v${expected}`);
  // The chart's image tag defaults to appVersion; a fixed tag in values.yaml would break that link.
  const values = parse(readFileSync(path.join(root, CHART, 'values.yaml'), 'utf8')) as { image?: { tag?: string } };
  if (values.image?.tag) problems.push(`${CHART}/values.yaml sets image.tag ${values.image.tag}; leave it empty (appVersion)`);
  return problems;
}

export function setVersion(version: string, dir = root): void {
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) throw new Error(`not a semantic version: ${version}`);
  for (const p of places) {
    const file = path.join(dir, p.file);
    writeFileSync(file, p.write(readFileSync(file, 'utf8'), version));
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, arg] = process.argv.slice(2);
  if (command === 'set' && arg) {
    setVersion(arg);
    console.log(`every place now names ${arg}; commit, then tag v${arg}`);
  } else if (command === 'check') {
    const found = readVersions();
    const problems = disagreements(found, arg);
    for (const f of found) console.log(`${f.name.padEnd(26)} ${f.version ?? '-'}`);
    if (problems.length > 0) {
      console.error(`versions disagree:\n  ${problems.join('\n  ')}`);
      process.exit(1);
    }
  } else {
    console.error('usage: hack/versions.ts check [vX.Y.Z] | set X.Y.Z');
    process.exit(2);
  }
}
