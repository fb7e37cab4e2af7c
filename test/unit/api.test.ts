import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeRequest } from '../../src/kube/api.js';

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
