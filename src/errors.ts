// Typed errors for the cases callers branch on.

/** A source's target annotations are missing or malformed: the user must fix them; never retried. */
export class InvalidReferenceError extends Error {
  override readonly name = 'InvalidReferenceError';
  constructor(
    readonly annotation: string,
    readonly value: string | undefined,
    readonly reason: string,
  ) {
    super(`annotation ${annotation}${value === undefined ? '' : `=${JSON.stringify(truncate(value))}`}: ${reason}`);
  }
}

/** Annotation values can be huge; messages keep a readable prefix. */
export function truncate(value: string, max = 200): string {
  return value.length <= max ? value : `${value.slice(0, max)}…(${value.length} chars)`;
}
