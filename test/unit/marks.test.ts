import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { keysFor } from '../../src/keys.js';
import { type MarkState, parseOwnedMarks, planMarks } from '../../src/mapping/marks.js';

const keys = keysFor();
const LABEL = keys.watchLabel;
const NAMES = keys.targetNames;
const NS = keys.targetNamespace;
const OWN = keys.autodiscovered;

const state = (annotations: Record<string, string> = {}, label?: string): MarkState => ({ namespace: 'apps', label, annotations });

/** Applies a merge patch's labels and annotations to a state, as the API server would. */
function apply(s: MarkState, consumers: string[]): MarkState {
  const { patch } = planMarks(s, consumers, keys, 'flux-system');
  if (!patch) return s;
  const annotations = { ...s.annotations };
  for (const [k, v] of Object.entries(patch.metadata.annotations ?? {})) {
    if (v === null) delete annotations[k];
    else annotations[k] = v;
  }
  const label = patch.metadata.labels && LABEL in patch.metadata.labels ? (patch.metadata.labels[LABEL] ?? undefined) : s.label;
  return { namespace: s.namespace, label, annotations };
}

describe('autodiscovery marks', () => {
  it('label an unmarked source, name its consumers sorted, in its own namespace, and record what was added', () => {
    const { patch } = planMarks(state(), ['b', 'a'], keys, 'flux-system');
    assert.deepEqual(patch, {
      metadata: {
        labels: { [LABEL]: 'true' },
        annotations: { [NAMES]: 'a,b', [NS]: 'apps', [OWN]: JSON.stringify({ label: true, namespace: true, names: ['a', 'b'] }) },
      },
    });
  });
  it('are idempotent: a marked source needs no patch', () => {
    const marked = apply(state(), ['a', 'b']);
    assert.equal(planMarks(marked, ['b', 'a'], keys, 'flux-system').patch, undefined);
  });
  it("merge with a user's names and remove only hrto's when consumers go away", () => {
    const user = state({ [NAMES]: 'mine', [NS]: 'apps', note: 'x' }, 'true');
    const marked = apply(user, ['a']);
    assert.equal(marked.annotations[NAMES], 'a,mine');
    assert.equal(marked.label, 'true');
    assert.deepEqual(parseOwnedMarks(marked.annotations[OWN]), { label: false, namespace: false, names: ['a'] });
    const cleaned = apply(marked, []);
    assert.deepEqual(cleaned, user);
  });
  it('removing everything hrto added also removes the digests it recorded', () => {
    const marked = apply(state(), ['a']);
    const withDigest = { ...marked, annotations: { ...marked.annotations, [keys.configDigest]: 'sha256:x', [keys.keyDigests]: 'v=-' } };
    assert.deepEqual(apply(withDigest, []), state());
  });
  it('a watch label set to anything but "true" opts the source out', () => {
    const plan = planMarks(state({}, 'false'), ['a'], keys, 'flux-system');
    assert.equal(plan.optedOut, true);
    assert.equal(plan.patch, undefined);
  });
  it("never rewrites a user's names that target another namespace: a conflict, label only", () => {
    const plan = planMarks(state({ [NAMES]: 'other', [NS]: 'elsewhere' }), ['a'], keys, 'flux-system');
    assert.match(plan.conflict ?? '', /elsewhere/);
    assert.deepEqual(plan.patch?.metadata.annotations, { [OWN]: JSON.stringify({ label: true, namespace: false, names: [] }) });
    assert.deepEqual(plan.patch?.metadata.labels, { [LABEL]: 'true' });
    // Names without a namespace annotation mean the default namespace.
    assert.ok(planMarks(state({ [NAMES]: 'other' }), ['a'], keys, 'flux-system').conflict);
    assert.equal(planMarks(state({ [NAMES]: 'other' }), ['a'], keys, 'apps').conflict, undefined);
  });
  it('property: marking then unmarking restores any user state, and marking twice is one patch', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(name, { maxLength: 4 }),
        fc.uniqueArray(name, { minLength: 1, maxLength: 4 }),
        fc.option(fc.constantFrom('apps', 'elsewhere'), { nil: undefined }),
        fc.option(fc.constant('true'), { nil: undefined }),
        (userNames, consumers, ns, label) => {
          const annotations: Record<string, string> = {};
          if (userNames.length > 0) annotations[NAMES] = [...userNames].sort().join(',');
          if (ns) annotations[NS] = ns;
          const user = state(annotations, label);
          const marked = apply(user, consumers);
          assert.equal(planMarks(marked, consumers, keys, 'flux-system').patch, undefined, 'second pass changes nothing');
          assert.equal(marked.label, 'true');
          assert.deepEqual(apply(marked, []), user);
        },
      ),
    );
  });
});
