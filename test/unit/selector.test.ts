import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { andSelectors, parseSelector, SelectorError } from '../../src/selector.js';

describe('label selectors', () => {
  it('match as the API server does', () => {
    const cases: [string, Record<string, string>, boolean][] = [
      ['', {}, true],
      ['sharding.fluxcd.io/key=shard1', { 'sharding.fluxcd.io/key': 'shard1' }, true],
      ['sharding.fluxcd.io/key=shard1', { 'sharding.fluxcd.io/key': 'shard2' }, false],
      ['sharding.fluxcd.io/key==shard1', {}, false],
      ['!sharding.fluxcd.io/key', {}, true],
      ['!sharding.fluxcd.io/key', { 'sharding.fluxcd.io/key': '' }, false],
      ['team', { team: 'a' }, true],
      ['team!=a', {}, true],
      ['team!=a', { team: 'a' }, false],
      ['env in (prod, staging),tier notin (db)', { env: 'prod', tier: 'web' }, true],
      ['env in (prod, staging),tier notin (db)', { env: 'prod', tier: 'db' }, false],
      ['env in (prod, staging),tier notin (db)', { env: 'dev' }, false],
    ];
    for (const [text, labels, want] of cases) assert.equal(parseSelector(text).matches(labels), want, `${text} on ${JSON.stringify(labels)}`);
  });
  it('refuse malformed selectors with the offending part', () => {
    for (const bad of ['a=b,', 'UPPER.com/x=y', 'a=b c', 'a in (x y)', 'a/b/c']) {
      assert.throws(() => parseSelector(bad), SelectorError, bad);
    }
  });
  it('AND selectors into one comma list', () => {
    assert.equal(andSelectors('a=true', '', 'b'), 'a=true,b');
  });
});
