// hrto's version: stamped into the production bundle at build time, read from package.json otherwise.
import { readFileSync } from 'node:fs';

declare const __HRTO_VERSION__: string | undefined;

export const VERSION: string =
  typeof __HRTO_VERSION__ === 'string'
    ? __HRTO_VERSION__
    : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
