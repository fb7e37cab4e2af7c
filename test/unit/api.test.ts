import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { describeRequest } from '../../src/kube/api.js';
import { lineSplitter } from '../../src/kube/lines.js';

describe('describeRequest: the verb and resource of a request, as the audit log names them', () => {
  const cases: [method: string, path: string, watch: boolean, verb: string, resource: string][] = [
    ['GET', '/api/v1/configmaps', false, 'list', 'configmaps'],
    ['GET', '/api/v1/namespaces/apps/configmaps', false, 'list', 'configmaps'],
    ['GET', '/api/v1/namespaces/apps/configmaps', true, 'watch', 'configmaps'],
    ['GET', '/api/v1/namespaces/apps/secrets/db', false, 'get', 'secrets'],
    ['PATCH', '/api/v1/namespaces/apps/configmaps/values', false, 'patch', 'configmaps'],
    ['PATCH', '/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/podinfo', false, 'patch', 'helmreleases'],
    ['GET', '/apis/helm.toolkit.fluxcd.io/v2/helmreleases?limit=500', false, 'list', 'helmreleases'],
    ['POST', '/api/v1/namespaces/apps/events', false, 'create', 'events'],
    ['PUT', '/apis/coordination.k8s.io/v1/namespaces/hrto/leases/hrto', false, 'update', 'leases'],
    ['DELETE', '/api/v1/namespaces/apps/configmaps/x', false, 'delete', 'configmaps'],
    ['GET', '/api/v1/namespaces/apps', false, 'get', 'namespaces'],
    ['GET', '/api/v1/namespaces', false, 'list', 'namespaces'],
    ['POST', '/api/v1/namespaces/apps/serviceaccounts/hrto/token', false, 'create', 'serviceaccounts/token'],
    ['GET', '/version', false, 'list', 'version'],
  ];
  for (const [method, path, watch, verb, resource] of cases) {
    it(`${method} ${path}${watch ? ' (watch)' : ''} -> ${verb} ${resource}`, () => {
      assert.deepEqual(describeRequest(method, path, watch), { verb, resource });
    });
  }
});

describe('lineSplitter', () => {
  it('hands over each non-empty line once, however the chunks cut it', () => {
    const text = '{"a":1}\n\n{"b":"x\\ny"}\n' + `{"c":"${'z'.repeat(100)}"}\n`;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 8 }), (cuts) => {
        const lines: string[] = [];
        const split = lineSplitter((l) => lines.push(l));
        const at = [0, ...[...new Set(cuts)].sort((a, b) => a - b), text.length];
        for (let i = 1; i < at.length; i++) split(text.slice(at[i - 1], at[i]));
        assert.deepEqual(lines, ['{"a":1}', '{"b":"x\\ny"}', `{"c":"${'z'.repeat(100)}"}`]);
      }),
    );
  });
  it('keeps an unfinished line until its end arrives', () => {
    const lines: string[] = [];
    const split = lineSplitter((l) => lines.push(l));
    split('{"a"');
    assert.deepEqual(lines, []);
    split(':1}\n{"b"');
    assert.deepEqual(lines, ['{"a":1}']);
  });
});
