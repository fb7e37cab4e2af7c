// A cached HelmRelease built by hand, as the decision sees it: deployed at the start of 2026.
import type { ReleaseObject } from '../../src/sources/objects.js';

export function releaseObject(name = 'app', overrides: Partial<ReleaseObject> = {}): ReleaseObject {
  return {
    key: `ns/${name}`,
    resourceVersion: '1',
    namespace: 'ns',
    name,
    uid: name === 'app' ? 'u' : name,
    suspended: false,
    suspend: false,
    labels: {},
    requestedAt: undefined,
    paused: false,
    stalled: false,
    valuesFrom: [],
    lastRelease: { deployedAt: '2026-01-01T00:00:00Z', status: 'deployed' },
    ...overrides,
  };
}
