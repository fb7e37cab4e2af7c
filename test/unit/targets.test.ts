import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidReferenceError } from '../../src/errors.js';
import { keysFor } from '../../src/keys.js';
import { isObjectName, parseTargets } from '../../src/mapping/targets.js';

const keys = keysFor();
const parse = (names?: string, namespace?: string) =>
  parseTargets(
    {
      ...(names === undefined ? {} : { [keys.targetNames]: names }),
      ...(namespace === undefined ? {} : { [keys.targetNamespace]: namespace }),
    },
    keys,
    'flux-system',
  );

describe('parseTargets', () => {
  it('trims spaces, drops empty entries and duplicates, sorts', () => {
    assert.deepEqual(parse(' b , a,,a ,  c,'), [
      { namespace: 'flux-system', name: 'a' },
      { namespace: 'flux-system', name: 'b' },
      { namespace: 'flux-system', name: 'c' },
    ]);
  });
  it('parses each distinct annotation pair once: the same answer, and the same error, again', () => {
    const first = parse('memo-a,memo-b', 'apps');
    assert.equal(parse('memo-a,memo-b', 'apps'), first);
    assert.notEqual(parse('memo-a,memo-b', 'other'), first);
    assert.deepEqual(parse('memo-a,memo-b', 'other'), [
      { namespace: 'other', name: 'memo-a' },
      { namespace: 'other', name: 'memo-b' },
    ]);
    // The default namespace and the key domain are part of what was parsed.
    assert.deepEqual(parseTargets({ [keys.targetNames]: 'memo-a' }, keys, 'elsewhere'), [{ namespace: 'elsewhere', name: 'memo-a' }]);
    const other = keysFor('example.com');
    assert.throws(() => parseTargets({ [keys.targetNames]: 'memo-a' }, other, 'flux-system'), InvalidReferenceError);
    const refused = (): unknown => {
      try {
        parse('Bad_Name');
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const err = refused();
    assert.ok(err instanceof InvalidReferenceError);
    assert.equal(refused(), err);
  });
  it('still parses annotations too large to keep', () => {
    const many = Array.from({ length: 200_000 }, (_, i) => `r${i}`).join(',');
    assert.equal(many.length > 2 ** 20, true);
    assert.equal(parse(many).length, 200_000);
    assert.equal(parse(`${many},r-extra`).length, 200_001);
    assert.deepEqual(parse('after-large'), [{ namespace: 'flux-system', name: 'after-large' }]);
  });
  it('forgets what it parsed once it holds about a million characters', () => {
    const first = parse('bound-first');
    assert.equal(parse('bound-first'), first);
    const filler = Array.from({ length: 800 }, (_, j) => `n${j}`).join(',');
    for (let i = 0; i < 300; i++) parse(`bound-${i},${filler}`);
    const again = parse('bound-first');
    assert.notEqual(again, first);
    assert.deepEqual(again, first);
  });
  it('uses the namespace annotation, else the default', () => {
    assert.deepEqual(parse('app', ' apps '), [{ namespace: 'apps', name: 'app' }]);
    assert.deepEqual(parse('app', ''), [{ namespace: 'flux-system', name: 'app' }]);
  });
  it('refuses a missing, empty or invalid reference with the annotation and value', () => {
    const cases: [string | undefined, string | undefined, string][] = [
      [undefined, undefined, keys.targetNames],
      [' , ,', undefined, keys.targetNames],
      ['App', undefined, keys.targetNames],
      ['ok,bad_name', undefined, keys.targetNames],
      ['a'.repeat(254), undefined, keys.targetNames],
      ['app', 'Not_A_Namespace', keys.targetNamespace],
      ['app', 'a'.repeat(64), keys.targetNamespace],
    ];
    for (const [names, ns, annotation] of cases) {
      assert.throws(
        () => parse(names, ns),
        (err: unknown) => err instanceof InvalidReferenceError && err.annotation === annotation && err.message.includes(annotation),
      );
    }
  });
  it('follows the key domain', () => {
    const other = keysFor('nebius.ai');
    assert.deepEqual(parseTargets({ 'nebius.ai/helmreleases-name': 'x' }, other, 'ns'), [{ namespace: 'ns', name: 'x' }]);
    assert.throws(() => parseTargets({ [keys.targetNames]: 'x' }, other, 'ns'), InvalidReferenceError);
  });

  const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
  it('property: any list of valid names with any spacing parses to the sorted unique set', () => {
    fc.assert(
      fc.property(fc.array(name, { minLength: 1, maxLength: 20 }), fc.array(fc.constantFrom('', ' ', '  ', '\t')), (names, pads) => {
        const text = names.map((n, i) => `${pads[i % (pads.length || 1)] ?? ''}${n}${pads[(i + 1) % (pads.length || 1)] ?? ''}`).join(',');
        const parsed = parse(text).map((r) => r.name);
        assert.deepEqual(parsed, [...new Set(names)].sort());
      }),
    );
  });
  it('property: arbitrary input either parses to valid names or throws InvalidReferenceError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.option(fc.string({ maxLength: 80 }), { nil: undefined }), (names, ns) => {
        try {
          const refs = parse(names, ns);
          assert.ok(refs.length > 0);
          for (const ref of refs) assert.ok(isObjectName(ref.name));
        } catch (err) {
          assert.ok(err instanceof InvalidReferenceError, String(err));
        }
      }),
      { numRuns: 500 },
    );
  });
});
