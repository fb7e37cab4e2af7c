import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Memory } from '../../src/memory.js';

describe('memory', () => {
  it('keeps one record per key, clears fields, and drops a record once nothing is left in it', () => {
    const m = new Memory<{ a?: number | undefined; b?: boolean | undefined }>();
    assert.equal(m.get('x'), undefined);
    m.remember('x').a = 1;
    m.remember('x').b = true;
    assert.deepEqual(m.get('x'), { a: 1, b: true });
    m.clear('x', ['a']);
    assert.deepEqual(m.get('x'), { a: undefined, b: true }, 'kept while something is left');
    m.remember('x').b = false;
    m.clear('x', []);
    assert.equal(m.get('x'), undefined, 'false and undefined are nothing');
    m.remember('y').a = 2;
    m.forget('y');
    assert.deepEqual([...m.entries()], []);
  });
});
