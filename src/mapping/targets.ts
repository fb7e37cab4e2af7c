// Parses a source's target annotations into HelmRelease references.
import { InvalidReferenceError } from '../errors.js';
import type { Keys } from '../keys.js';

export interface ObjectRef {
  namespace: string;
  name: string;
}

export const refKey = (ref: ObjectRef): string => `${ref.namespace}/${ref.name}`;

// metadata.name of a custom resource: a DNS-1123 subdomain.
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// A namespace: a DNS-1123 label.
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isObjectName(name: string): boolean {
  return name.length <= 253 && SUBDOMAIN.test(name);
}

export function isNamespaceName(name: string): boolean {
  return name.length <= 63 && LABEL.test(name);
}

// Every event of a source reads its target annotations again, and they rarely change: each distinct
// pair is parsed once. Results are shared: never mutated. The memo is bounded by the length of what
// it holds, not by its entries, since annotation values may be large (a parse is cheap to redo).
const parsed = new Map<string, readonly ObjectRef[] | InvalidReferenceError>();
const PARSED_CHARS = 1 << 20;
let parsedChars = 0;

/**
 * The HelmReleases a source names: comma-separated names (spaces trimmed, empty entries and
 * duplicates dropped, sorted) in one namespace. Any invalid part makes the whole reference invalid,
 * so a typo blocks the change until fixed instead of silently skipping one release.
 */
export function parseTargets(
  annotations: Readonly<Record<string, string>> | undefined,
  keys: Keys,
  defaultNamespace: string,
): readonly ObjectRef[] {
  const rawNames = annotations?.[keys.targetNames];
  const rawNamespace = annotations?.[keys.targetNamespace];
  // \u0001 stands for an absent annotation: object metadata cannot hold it.
  const memo = [keys.targetNames, rawNames ?? '\u0001', keys.targetNamespace, rawNamespace ?? '\u0001', defaultNamespace].join('\u0000');
  let result = parsed.get(memo);
  if (result === undefined) {
    try {
      result = readTargets(rawNames, rawNamespace, keys, defaultNamespace);
    } catch (err) {
      if (!(err instanceof InvalidReferenceError)) throw err;
      result = err;
    }
    if (parsedChars + memo.length > PARSED_CHARS) {
      parsed.clear();
      parsedChars = 0;
    }
    if (memo.length <= PARSED_CHARS) {
      parsed.set(memo, result);
      parsedChars += memo.length;
    }
  }
  if (result instanceof InvalidReferenceError) throw result;
  return result;
}

function readTargets(rawNames: string | undefined, rawNamespace: string | undefined, keys: Keys, defaultNamespace: string): readonly ObjectRef[] {
  if (rawNames === undefined) {
    throw new InvalidReferenceError(keys.targetNames, undefined, 'missing: name the HelmReleases to trigger');
  }
  const names = [...new Set(rawNames.split(',').map((n) => n.trim()).filter((n) => n !== ''))].sort();
  if (names.length === 0) {
    throw new InvalidReferenceError(keys.targetNames, rawNames, 'no HelmRelease name in it');
  }
  const bad = names.filter((n) => !isObjectName(n));
  if (bad.length > 0) {
    throw new InvalidReferenceError(
      keys.targetNames,
      rawNames,
      `not a valid object name: ${bad.slice(0, 5).map((n) => JSON.stringify(n)).join(', ')}`,
    );
  }
  const namespace = rawNamespace === undefined || rawNamespace.trim() === '' ? defaultNamespace : rawNamespace.trim();
  if (!isNamespaceName(namespace)) {
    throw new InvalidReferenceError(keys.targetNamespace, rawNamespace, 'not a valid namespace name');
  }
  return names.map((name) => ({ namespace, name }));
}
