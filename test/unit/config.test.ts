import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, resolveConfig, settingsFromEnv } from '../../src/config.js';

describe('config', () => {
  it('has the seed defaults', () => {
    const c = resolveConfig();
    assert.equal(c.maxConcurrency, 10);
    assert.equal(c.cacheSyncTimeoutMs, 120_000);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.keyDomain, 'uburro.github.com');
    assert.equal(c.defaultNamespace, 'flux-system');
    assert.equal(c.triggerMode, 'force');
    assert.deepEqual(c.watchNamespaces, []);
  });
  it('reads the environment and lets flags win', () => {
    const env = settingsFromEnv({ MAX_CONCURRENCY: '4', CACHE_SYNC_TIMEOUT: '30s', LOG_LEVEL: 'DEBUG' });
    const c = resolveConfig(env, { maxConcurrency: '7' });
    assert.equal(c.maxConcurrency, 7);
    assert.equal(c.cacheSyncTimeoutMs, 30_000);
    assert.equal(c.logLevel, 'debug');
    assert.deepEqual(resolveConfig({ watchNamespaces: ' a, b ,a,' }).watchNamespaces, ['a', 'b']);
  });
  it('reports every invalid setting by its flag or variable name', () => {
    assert.throws(
      () => resolveConfig({ maxConcurrency: '0', cacheSyncTimeout: 'soon', logLevel: 'loud', triggerMode: 'x', watchNamespaces: 'Bad NS' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        ['MAX_CONCURRENCY', 'CACHE_SYNC_TIMEOUT', 'LOG_LEVEL', '--trigger-mode', '--watch-namespaces', '"soon"'].every((w) => err.message.includes(w)),
    );
    assert.throws(() => resolveConfig({ cacheSyncTimeout: '0s' }), /must be positive/);
  });
  it("API client manners: Flux's QPS and burst by default, 0 QPS for none; --events-addr off unless an http(s) URL", () => {
    const c = resolveConfig();
    assert.deepEqual([c.kubeApiQps, c.kubeApiBurst, c.eventsAddr], [50, 300, '']);
    const set = resolveConfig({ kubeApiQps: '0', kubeApiBurst: '10', eventsAddr: 'http://notification-controller.flux-system.svc.cluster.local./' });
    assert.deepEqual([set.kubeApiQps, set.kubeApiBurst, set.eventsAddr], [0, 10, 'http://notification-controller.flux-system.svc.cluster.local./']);
    assert.throws(() => resolveConfig({ kubeApiQps: '-1', kubeApiBurst: '0' }), (err: unknown) => err instanceof ConfigError && ['--kube-api-qps', '--kube-api-burst'].every((w) => err.message.includes(w)));
    assert.throws(() => resolveConfig({ eventsAddr: 'notification-controller:80' }), /--events-addr: must be an http/);
    assert.throws(() => resolveConfig({ eventsAddr: 'ftp://x/' }), /--events-addr/);
  });
});
