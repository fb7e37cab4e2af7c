// Go's time.ParseDuration syntax ("2m", "1h30m", "1.5s", "300ms"), so the seed's settings carry over.
const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

// Escaped: one non-ASCII character in the bundle makes V8 hold all of its source as UTF-16 (twice the memory).
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/y;

/** Milliseconds of a Go duration string; throws a RangeError naming the input when it is not one. */
export function parseGoDuration(input: string): number {
  const text = input.trim();
  let sign = 1;
  let rest = text;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw new RangeError(`invalid duration "${input}"`);
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < rest.length) {
    const match = PART.exec(rest);
    if (!match) throw new RangeError(`invalid duration "${input}" (expected e.g. 30s, 2m, 1h30m)`);
    total += Number(match[1]) * UNITS[match[2]!]!;
  }
  return sign * total;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms !== 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms !== 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
