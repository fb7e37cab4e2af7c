// Which keys of a source changed since hrto last recorded it, by name only: the key-hashes record
// kept on the source beside its digest, and the diff a trigger reports. Never a value.
import { DIGEST_PREFIX } from './digest.js';

/** 32 bits of each key's own digest: enough to tell that a key changed, not to decide a trigger. */
const HASH_LENGTH = 8;
/** Past this many characters, key names are hashed too: the count stays exact, the names are lost. */
export const NAMED_LIMIT = 2048;
/** Past this, only the number of keys is kept (a ConfigMap of over a thousand keys). */
export const HASHED_LIMIT = 16 * 1024;
/** Names shown in one message; past it, counts. */
const SHOWN = 10;

const short = (digest: string): string => digest.slice(DIGEST_PREFIX.length, DIGEST_PREFIX.length + HASH_LENGTH);

function nameHash(name: string): string {
  // FNV-1a: a stable 32-bit hash of the name, no crypto needed for a label that is never trusted.
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/**
 * The record of a content's keys, from their digests: `a=1f2e3d4c,b=…` sorted by name; `#` and
 * name-hash/value-hash pairs past NAMED_LIMIT; `#N` (the count alone) past HASHED_LIMIT.
 */
export function encodeKeyHashes(keyDigests: Readonly<Record<string, string>>): string {
  const names = Object.keys(keyDigests).sort();
  const named = names.map((k) => `${k}=${short(keyDigests[k]!)}`).join(',');
  if (named.length <= NAMED_LIMIT) return named;
  const hashed = `#${names.map((k) => nameHash(k) + short(keyDigests[k]!)).join('')}`;
  return hashed.length <= HASHED_LIMIT ? hashed : `#${names.length}`;
}

type Record_ = { form: 'named' | 'hashed'; entries: Map<string, string> } | { form: 'count'; count: number };

function parseKeyHashes(value: string): Record_ | undefined {
  if (value.startsWith('#')) {
    const body = value.slice(1);
    if (/^[0-9]+$/.test(body)) return { form: 'count', count: Number(body) };
    if (!/^([0-9a-f]{16})*$/.test(body)) return undefined;
    const entries = new Map<string, string>();
    for (let i = 0; i < body.length; i += 16) entries.set(body.slice(i, i + 8), body.slice(i + 8, i + 16));
    return { form: 'hashed', entries };
  }
  const entries = new Map<string, string>();
  for (const entry of value === '' ? [] : value.split(',')) {
    const match = /^([-._a-zA-Z0-9]+)=([0-9a-f]{8})$/.exec(entry);
    if (!match) return undefined;
    entries.set(match[1]!, match[2]!);
  }
  return { form: 'named', entries };
}

export type KeyChanges =
  /** Names known. */
  | { known: 'names'; added: string[]; changed: string[]; removed: string[] }
  /** Only how many (a record past its size bound). */
  | { known: 'count'; count: number }
  /** Nothing recorded to compare with (first sight, or a record of an older edition). */
  | { known: 'nothing' };

/** The keys that differ between the recorded key-hashes and the content's key digests now. */
export function diffKeys(recorded: string | undefined, keyDigests: Readonly<Record<string, string>>): KeyChanges {
  const before = recorded === undefined ? undefined : parseKeyHashes(recorded);
  if (!before) return { known: 'nothing' };
  if (before.form === 'count') return { known: 'nothing' };
  const now = new Map(Object.keys(keyDigests).map((k) => [before.form === 'named' ? k : nameHash(k), { name: k, hash: short(keyDigests[k]!) }]));
  const added: string[] = [];
  const changed: string[] = [];
  for (const [id, { name, hash }] of now) {
    const old = before.entries.get(id);
    if (old === undefined) added.push(name);
    else if (old !== hash) changed.push(name);
  }
  const removed = [...before.entries.keys()].filter((id) => !now.has(id));
  if (before.form === 'hashed') return { known: 'count', count: added.length + changed.length + removed.length };
  return { known: 'names', added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}

const plural = (n: number): string => `${n} key${n === 1 ? '' : 's'}`;

/** For an Event, a log line or explain: `changed values.yaml, added extra, removed old`. */
export function formatKeyChanges(changes: KeyChanges): string {
  if (changes.known === 'nothing') return 'changed keys not recorded before';
  if (changes.known === 'count') return `${plural(changes.count)} changed`;
  const { added, changed, removed } = changes;
  const total = added.length + changed.length + removed.length;
  if (total === 0) return 'no key changed';
  if (total > SHOWN) return `${plural(total)} changed (${changed.length} changed, ${added.length} added, ${removed.length} removed)`;
  const parts: string[] = [];
  if (changed.length > 0) parts.push(`changed ${changed.join(', ')}`);
  if (added.length > 0) parts.push(`added ${added.join(', ')}`);
  if (removed.length > 0) parts.push(`removed ${removed.join(', ')}`);
  return parts.join('; ');
}
