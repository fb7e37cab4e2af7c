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
});
