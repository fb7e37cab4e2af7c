import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { disagreements, readVersions, setVersion } from '../../hack/versions.js';
import { projectRoot } from '../harness/binaries.js';
import { VERSION } from '../../src/version.js';

const yamlOf = <T>(file: string): T => parse(readFileSync(path.join(projectRoot, file), 'utf8')) as T;

describe('release versions', () => {
  it('package, lock, chart version and appVersion, the README install commands, kustomize image tag and hrto --version agree', () => {
    const found = readVersions();
    assert.equal(found.length, 6);
    assert.deepEqual(disagreements(found), []);
    assert.equal(found[0]!.version, VERSION);
    assert.deepEqual(disagreements(found, `v${VERSION}`), []);
    assert.match(disagreements(found, 'v99.0.0').join(), /tag v99.0.0 is not v/);
  });
  it('a disagreement is named with its file', () => {
    const found = readVersions().map((f) => (f.name === 'chart appVersion' ? { ...f, version: '0.0.1' } : f));
    assert.match(disagreements(found).join(), /chart appVersion \(charts\/helmrelease-trigger-operator\/Chart.yaml\) is 0.0.1/);
  });
  it('`set` moves every place together', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hrto-versions-'));
    try {
      for (const f of new Set(readVersions().map((v) => v.file))) cpSync(path.join(projectRoot, f), path.join(dir, f));
      setVersion('9.8.7', dir);
      assert.deepEqual(new Set(readVersions(dir).map((f) => f.version)), new Set(['9.8.7']));
      assert.throws(() => setVersion('next', dir), /not a semantic version/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('the release pushes the image the chart and kustomize install by default', () => {
    const workflow = yamlOf<{ env: { IMAGE: string } }>('.github/workflows/release.yaml');
    const values = yamlOf<{ image: { repository: string } }>('charts/helmrelease-trigger-operator/values.yaml');
    const kustomization = yamlOf<{ images: { newName: string }[] }>('config/manager/kustomization.yaml');
    assert.equal(values.image.repository, workflow.env.IMAGE);
    assert.equal(kustomization.images[0]!.newName, workflow.env.IMAGE);
  });
  it("the README installs what the release publishes: the chart from the workflow's registry, kustomize from the repository the image is built from", () => {
    const workflow = yamlOf<{ env: { IMAGE: string; CHARTS: string } }>('.github/workflows/release.yaml');
    const chart = yamlOf<{ name: string }>('charts/helmrelease-trigger-operator/Chart.yaml');
    const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
    assert.ok(readme.includes(`helm install hrto ${workflow.env.CHARTS}/${chart.name} --version `), 'the OCI chart the workflow pushes');
    // The image is ghcr.io/<owner>/<repository>: the repository kustomize is fetched from at the tag.
    const [, owner, repo] = workflow.env.IMAGE.split('/');
    assert.match(readme, new RegExp(`kubectl apply -k 'https://github\\.com/${owner}/${repo}//config/default\\?ref=v`));
  });
});
