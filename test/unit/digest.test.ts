import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { contentDigest, type ContentSections, isOwnDigest } from '../../src/digest.js';

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
  it('keeps the exact digests recorded on clusters (a change re-triggers every release on upgrade)', async () => {
    const { keyDigests } = await import('../../src/digest.js');
    const content = {
      data: { 'values.yaml': 'replicas: 2\nimage: "x"\n', extra: '\u00e9t\u00e9 \u2603', empty: '' },
      binaryData: { bin: Buffer.from([0, 1, 2, 255]).toString('base64') },
    };
    assert.equal(contentDigest(content), 'sha256:9c26c3c054857d1db72b29889629d95de779e3b08a973b9a29593da6a55656a0');
    assert.equal(contentDigest({}), 'sha256:31199099a6a574ca4209389963883cadc2ae9e3290c8a93e3b49d2fd78b9ccb3');
    assert.deepEqual(keyDigests(content), {
      'values.yaml': 'sha256:0e39fd16c8f547d4c05ff9f3f99211e06e65a24270aaafe5f9dae7800b7b9e69',
      extra: 'sha256:890f594b9442b17be119997a9e6ed0c86f32b84eef83fdc5ca1e71c1310052c4',
      empty: 'sha256:6900209191ea2988b9a1d4035a46a3fcb7e37ddf64c594bc350bb9fe6fb26ca5',
      bin: 'sha256:d2570ec5dd0d4a865b1e834e21d0112ed83595896bf8f56bdf8a3351d30ee259',
    });
  });
  it("takes a one-key content's digest as its key's", async () => {
    const { keyDigests } = await import('../../src/digest.js');
    const contents: ContentSections[] = [{ data: { 'values.yaml': 'a: 1\n' } }, { binaryData: { k: b64('x') } }, { data: { k: 'x' }, binaryData: { k: b64('y') } }];
    for (const content of contents) {
      const whole = contentDigest(content);
      assert.deepEqual(keyDigests(content, whole), keyDigests(content));
    }
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
