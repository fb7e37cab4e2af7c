// Writes the configuration reference (docs/configuration.md) from the flag table (src/flags.ts), between its
// markers. `npm run -s docs:flags`; test/unit/flags.test.ts fails when the two differ.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { referenceTable } from '../src/flags.js';

export const REFERENCE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'configuration.md');
const BLOCK = /(<!-- flags:begin[^\n]*-->\n)[\s\S]*?(\n<!-- flags:end -->)/;

/** The page with its reference block made anew. */
export function withReference(readme: string): string {
  if (!BLOCK.test(readme)) throw new Error('docs/configuration.md: no <!-- flags:begin --> ... <!-- flags:end --> block');
  return readme.replace(BLOCK, (_m, begin: string, end: string) => `${begin}${referenceTable()}${end}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(REFERENCE, withReference(readFileSync(REFERENCE, 'utf8')));
}
