// The GitHub Actions workflows cannot run here; actionlint (built from the Go module proxy) checks
// them instead: syntax, expressions, action inputs, job dependencies, permissions.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { deployBinaries, ensureBinary, projectRoot } from '../harness/binaries.js';

const run = promisify(execFile);

async function actionlint(files: string[], cwd = projectRoot): Promise<{ code: number; output: string }> {
  const bin = await ensureBinary(deployBinaries.actionlint);
  try {
    const { stdout, stderr } = await run(bin.path, ['-no-color', ...files], { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const { code, stdout = '', stderr = '' } = err as { code?: number; stdout?: string; stderr?: string };
    return { code: code ?? 1, output: stdout + stderr };
  }
}

describe('release pipeline', () => {
  it('actionlint accepts every workflow', async () => {
    const dir = path.join(projectRoot, '.github', 'workflows');
    const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
    assert.deepEqual(files.sort(), ['ci.yaml', 'release.yaml']);
    const result = await actionlint(files.map((f) => path.join('.github', 'workflows', f)));
    assert.equal(result.code, 0, result.output);
  });

  it('and refuses a broken one (the check can fail)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hrto-workflows-'));
    try {
      const file = path.join(dir, 'broken.yaml');
      writeFileSync(file, ['on: push', 'jobs:', '  a:', '    runs-on: ubuntu-24.04', '    needs: missing', '    steps:', '      - run: echo "${{ github.no_such_context }}"', ''].join('\n'));
      const result = await actionlint([file], dir);
      assert.equal(result.code, 1, result.output);
      assert.match(result.output, /missing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
