import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { diffKeys, encodeKeyHashes, formatKeyChanges, HASHED_LIMIT, NAMED_LIMIT } from '../../src/changes.js';
import { keyDigests } from '../../src/digest.js';

const digests = (data: Record<string, string>) => keyDigests({ data });

describe('key changes', () => {
  it('names the keys added, changed and removed, and not the untouched one', () => {
    const before = encodeKeyHashes(digests({ 'values.yaml': 'a: 1', keep: 'x', old: 'gone' }));
    const changes = diffKeys(before, digests({ 'values.yaml': 'a: 2', keep: 'x', extra: 'new' }));
    assert.deepEqual(changes, { known: 'names', added: ['extra'], changed: ['values.yaml'], removed: ['old'] });
    assert.equal(formatKeyChanges(changes), 'changed values.yaml; added extra; removed old');
  });

  it('records names and short hashes only, sorted', () => {
    const record = encodeKeyHashes(digests({ b: 'secret-value', a: 'other' }));
    assert.match(record, /^a=[0-9a-f]{8},b=[0-9a-f]{8}$/);
    assert.ok(!record.includes('secret-value'));
  });

  it('says nothing was recorded for a first sight or an unreadable record', () => {
    assert.deepEqual(diffKeys(undefined, digests({ a: '1' })), { known: 'nothing' });
    assert.deepEqual(diffKeys('a=zz', digests({ a: '1' })), { known: 'nothing' });
    assert.equal(formatKeyChanges({ known: 'nothing' }), 'changed keys not recorded before');
  });

  it('counts past ten names instead of listing them', () => {
    const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, 'v']));
    const changes = diffKeys(encodeKeyHashes(digests(many)), digests(Object.fromEntries(Object.keys(many).map((k) => [k, 'w']))));
    assert.equal(formatKeyChanges(changes), '12 keys changed (12 changed, 0 added, 0 removed)');
  });

  it('hashes the names past its bound and still counts exactly', () => {
    const long = (i: number) => `${'n'.repeat(200)}-${i}`;
    const data = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [long(i), 'v']));
    const record = encodeKeyHashes(digests(data));
    assert.ok(record.startsWith('#') && record.length <= HASHED_LIMIT && record.length > 1);
    assert.ok(!record.includes('nnnn'), 'no key names once hashed');
    const next = { ...data, [long(0)]: 'w', [long(99)]: 'v' };
    delete next[long(1)];
    const changes = diffKeys(record, digests(next));
    assert.deepEqual(changes, { known: 'count', count: 3 });
    assert.equal(formatKeyChanges(changes), '3 keys changed');
  });

  it('keeps only the count past the hashed bound', () => {
    const data = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`key-${i}`, 'v']));
    const record = encodeKeyHashes(digests(data));
    assert.equal(record, '#1500');
    assert.deepEqual(diffKeys(record, digests(data)), { known: 'nothing' });
  });

  it('property: the named record is within its bound or hashed, and an unchanged content diffs empty', () => {
    const key = fc.stringMatching(/^[-._a-zA-Z0-9]{1,40}$/);
    fc.assert(
      fc.property(fc.dictionary(key, fc.string(), { maxKeys: 80 }), (data) => {
        const record = encodeKeyHashes(digests(data));
        assert.ok(record.startsWith('#') || record.length <= NAMED_LIMIT);
        const changes = diffKeys(record, digests(data));
        if (changes.known === 'names') assert.equal(changes.added.length + changes.changed.length + changes.removed.length, 0);
        else assert.deepEqual(changes, { known: 'count', count: 0 });
      }),
    );
  });
});
