// Typed errors for the cases callers branch on.

/** A source's target annotations are missing or malformed: the user must fix them; never retried. */
export class InvalidReferenceError extends Error {
  override readonly name: string = 'InvalidReferenceError';
  constructor(
    readonly annotation: string,
    readonly value: string | undefined,
    readonly reason: string,
  ) {
    super(`annotation ${annotation}${value === undefined ? '' : `=${JSON.stringify(truncate(value))}`}: ${reason}`);
  }
}

/** A source names a HelmRelease in another namespace while --no-cross-namespace-refs forbids it. */
export class CrossNamespaceRefError extends InvalidReferenceError {
  override readonly name = 'CrossNamespaceRefError';
}

/** Annotation values can be huge; messages keep a readable prefix. */
export function truncate(value: string, max = 200): string {
  return value.length <= max ? value : `${value.slice(0, max)}…(${value.length} chars)`;
}

/** A write attempted by an instance that is not (or no longer) the leader; never sent. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
}
