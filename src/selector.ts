// Kubernetes label selectors (the string form of `kubectl -l`): parsed once, sent to the API server
// where it filters, and matched in process where hrto has to decide itself (an unwatched source read
// by autodiscovery, HelmReleases in or out of scope).
import { isLabelKey } from './keys.js';

type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

export interface LabelSelector {
  /** The canonical string form, as the API server accepts it; '' selects everything. */
  readonly text: string;
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
}

const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

/** Splits on commas outside parentheses: `a in (x,y),b` is two requirements. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  terms.push(current);
  return terms.map((t) => t.trim());
}

function checkKey(key: string, term: string): string {
  if (!isLabelKey(key)) throw new SelectorError(`invalid label key ${JSON.stringify(key)} in ${JSON.stringify(term)}`);
  return key;
}

function checkValue(value: string, term: string): string {
  if (value.length > 63 || !VALUE.test(value)) throw new SelectorError(`invalid label value ${JSON.stringify(value)} in ${JSON.stringify(term)}`);
  return value;
}

function parseTerm(term: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(term);
  if (set) {
    const values = set[3]!.split(',').map((v) => checkValue(v.trim(), term));
    return { key: checkKey(set[1]!, term), op: set[2] as 'in' | 'notin', values };
  }
  const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
  if (cmp) {
    return { key: checkKey(cmp[1]!, term), op: cmp[2] === '!=' ? 'notin' : 'in', values: [checkValue(cmp[3]!, term)] };
  }
  if (term.startsWith('!')) return { key: checkKey(term.slice(1).trim(), term), op: '!exists' };
  return { key: checkKey(term, term), op: 'exists' };
}

function matchOne(req: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, req.key);
  switch (req.op) {
    case 'exists':
      return has;
    case '!exists':
      return !has;
    case 'in':
      return has && req.values.includes(labels[req.key]!);
    case 'notin':
      return !has || !req.values.includes(labels[req.key]!);
  }
}

export function parseSelector(text: string): LabelSelector {
  const trimmed = text.trim();
  const requirements = trimmed === '' ? [] : splitTerms(trimmed).map((term) => {
    if (term === '') throw new SelectorError(`empty requirement in ${JSON.stringify(text)}`);
    return parseTerm(term);
  });
  return {
    text: trimmed,
    matches: (labels) => requirements.every((r) => matchOne(r, labels ?? {})),
  };
}

/** Both selectors at once, as the API server reads a comma list (AND). */
export function andSelectors(...texts: string[]): string {
  return texts.filter((t) => t.trim() !== '').join(',');
}
