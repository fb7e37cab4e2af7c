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

/**
 * The HelmReleases a source names: comma-separated names (spaces trimmed, empty entries and
 * duplicates dropped, sorted) in one namespace. Any invalid part makes the whole reference invalid,
 * so a typo blocks the change until fixed instead of silently skipping one release.
 */
export function parseTargets(
  annotations: Readonly<Record<string, string>> | undefined,
  keys: Keys,
  defaultNamespace: string,
): ObjectRef[] {
  const rawNames = annotations?.[keys.targetNames];
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
  const rawNamespace = annotations?.[keys.targetNamespace];
  const namespace = rawNamespace === undefined || rawNamespace.trim() === '' ? defaultNamespace : rawNamespace.trim();
  if (!isNamespaceName(namespace)) {
    throw new InvalidReferenceError(keys.targetNamespace, rawNamespace, 'not a valid namespace name');
  }
  return names.map((name) => ({ namespace, name }));
}
