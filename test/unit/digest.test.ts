import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { contentDigest, isOwnDigest } from '../../src/digest.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('contentDigest', () => {
  it('is sha256:<64 hex>', () => {
    assert.match(contentDigest({ data: { a: '1' } }), /^sha256:[0-9a-f]{64}$/);
    assert.ok(isOwnDigest(contentDigest({})));
  });
  it('does not depend on key order', () => {
    assert.equal(contentDigest({ data: { a: '1', b: '2' } }), contentDigest({ data: { b: '2', a: '1' } }));
  });
  it('is unambiguous across key/value boundaries and sections', () => {
    const digests = [
      contentDigest({ data: { a: 'bc' } }),
      contentDigest({ data: { ab: 'c' } }),
      contentDigest({ data: { a: 'b', c: '' } }),
      contentDigest({ binaryData: { a: b64('bc') } }),
      contentDigest({ data: {} }),
      contentDigest({ data: { a: '' } }),
    ];
    assert.equal(new Set(digests).size, digests.length);
  });
  it('sees binaryData changes', () => {
    assert.notEqual(contentDigest({ binaryData: { k: b64('x') } }), contentDigest({ binaryData: { k: b64('y') } }));
  });
  it('treats empty and absent sections alike', () => {
    assert.equal(contentDigest({}), contentDigest({ data: {}, binaryData: {} }));
  });
  it('property: equal content gives equal digests; a changed value changes it', () => {
    const entries = fc.dictionary(fc.stringMatching(/^[-._a-zA-Z0-9]{1,20}$/), fc.string({ maxLength: 50 }), { minKeys: 1 });
    fc.assert(
      fc.property(entries, fc.string({ maxLength: 5 }), (data, suffix) => {
        const shuffled = Object.fromEntries(Object.entries(data).reverse());
        assert.equal(contentDigest({ data }), contentDigest({ data: shuffled }));
        const key = Object.keys(data)[0]!;
        const changed = { ...data, [key]: `${data[key]}${suffix}x` };
        assert.notEqual(contentDigest({ data }), contentDigest({ data: changed }));
      }),
    );
  });
  it('recognises only its own format', () => {
    assert.equal(isOwnDigest(undefined), false);
    assert.equal(isOwnDigest('1a2b3c4d'), false); // an older operator's adler32
    assert.equal(isOwnDigest('sha256:abc'), false);
    assert.equal(isOwnDigest(`sha256:${'A'.repeat(64)}`), false);
  });
});

describe('key digests', () => {
  it('digest each key alone, and round-trip through the annotation format', async () => {
    const { encodeKeyDigests, keyDigests, parseKeyDigests, selectKeyDigests } = await import('../../src/digest.js');
    const digests = keyDigests({ data: { 'values.yaml': 'a: 1\n', other: 'x' } });
    assert.equal(digests['values.yaml'], contentDigest({ data: { 'values.yaml': 'a: 1\n' } }));
    const selected = selectKeyDigests(digests, ['values.yaml', 'missing.yaml']);
    assert.deepEqual(selected, { 'missing.yaml': '-', 'values.yaml': digests['values.yaml'] });
    assert.deepEqual(parseKeyDigests(encodeKeyDigests(selected)), selected);
    assert.deepEqual(parseKeyDigests('garbage,a=sha256:zz,ok.yaml=-'), { 'ok.yaml': '-' });
    assert.deepEqual(parseKeyDigests(undefined), {});
  });
});
