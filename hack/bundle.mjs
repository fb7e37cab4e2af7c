// npm run build: the production build, two tree-shaken ESM files in dist/ (plus chunks they share):
// hrto.mjs, the controller and CLI, and kubeconfig-worker.mjs, client-node's KubeConfig, run in a
// worker thread only when a kubeconfig is read (never in a pod). No node_modules at run time.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const version = /"version":\s*"([^"]+)"/.exec(readFileSync(path.join(root, 'package.json'), 'utf8'))?.[1];
if (!version) throw new Error('package.json has no version');
const outdir = path.join(root, 'dist');
rmSync(outdir, { recursive: true, force: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { hrto: 'src/cli.ts', 'kubeconfig-worker': 'src/kube/kubeconfig-worker.ts' },
  outdir,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: process.env.HRTO_BUNDLE_MINIFY !== '0',
  sourcemap: 'linked',
  legalComments: 'external',
  metafile: true,
  logLevel: 'warning',
  define: { __HRTO_VERSION__: JSON.stringify(version) },
  // The CommonJS libraries inside (pino, prom-client) call require() for Node's built-in modules.
  banner: { js: "import { createRequire as __hrtoRequire } from 'node:module'; const require = __hrtoRequire(import.meta.url);" },
});

// V8 keeps a module's source for its lifetime, as UTF-16 if one character is not Latin-1: one stray
// character doubles that memory, so a non-ASCII output fails the build (escape it in the source).
for (const file of Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.mjs'))) {
  const text = readFileSync(path.join(root, file), 'utf8');
  const at = text.search(/[\u0080-\uffff]/);
  if (at >= 0) throw new Error(`${file}: non-ASCII output near ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 10))}; escape it in the source`);
}

const sizes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.mjs'))
  .map(([file, out]) => `${path.relative(root, file)} ${(out.bytes / 1024).toFixed(0)} KiB`);
process.stdout.write(`built hrto ${version}: ${sizes.join(', ')}\n`);
