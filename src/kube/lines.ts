// Line framing of a text stream (a watch: one JSON event per line).

/**
 * Hands each non-empty line of a text stream to `onLine`. A line may span many chunks (a large
 * object), so only new text is scanned for its end.
 */
export function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', start)) {
      const line = partial + chunk.slice(start, nl);
      partial = '';
      start = nl + 1;
      if (line) onLine(line);
    }
    partial += chunk.slice(start);
  };
}
