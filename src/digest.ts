// The content digest of a ConfigMap or Secret: what hrto records in its config-digest annotation.
import { createHash } from 'node:crypto';

export const DIGEST_PREFIX = 'sha256:';
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** True for a digest this edition wrote; anything else (absent, another operator's) is first sight. */
export function isOwnDigest(value: string | undefined): value is string {
  return value !== undefined && DIGEST.test(value);
}

export interface ContentSections {
  /** String entries: ConfigMap `data`. */
  data?: Readonly<Record<string, string>> | undefined;
  /** Base64 entries: ConfigMap `binaryData`, Secret `data`. */
  binaryData?: Readonly<Record<string, string>> | undefined;
}

// Every change digests its source's content, so no buffer is made per field: one 8-byte prefix
// serves every call (update() copies it), and text is hashed without an encoded copy.
const LENGTH = Buffer.alloc(8);

/** `value`'s bytes in `encoding`, after their length as a 64-bit big-endian integer. */
function lengthPrefixed(hash: ReturnType<typeof createHash>, value: string, encoding: BufferEncoding): void {
  const bytes = encoding === 'utf8' ? undefined : Buffer.from(value, encoding);
  const length = bytes ? bytes.length : Buffer.byteLength(value, 'utf8');
  LENGTH.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 0);
  LENGTH.writeUInt32BE(length >>> 0, 4);
  hash.update(LENGTH);
  if (bytes) hash.update(bytes);
  else hash.update(value, 'utf8');
}

/**
 * sha256 over a canonical encoding: sections in fixed order, keys sorted, every key and value
 * length-prefixed (so no two different contents share an encoding), base64 values decoded to bytes.
 * Metadata is not part of it.
 */
export function contentDigest(content: ContentSections): string {
  const hash = createHash('sha256');
  const sections: [string, Readonly<Record<string, string>> | undefined, BufferEncoding][] = [
    ['data', content.data, 'utf8'],
    ['binaryData', content.binaryData, 'base64'],
  ];
  for (const [section, entries, encoding] of sections) {
    const keys = Object.keys(entries ?? {}).sort();
    lengthPrefixed(hash, `${section}:${keys.length}`, 'utf8');
    for (const key of keys) {
      lengthPrefixed(hash, key, 'utf8');
      lengthPrefixed(hash, entries![key]!, encoding);
    }
  }
  return `${DIGEST_PREFIX}${hash.digest('hex')}`;
}

/** The digest of each key alone (a key in both sections is digested with both); `whole`: contentDigest(content). */
export function keyDigests(content: ContentSections, whole?: string): Record<string, string> {
  const keys = new Set([...Object.keys(content.data ?? {}), ...Object.keys(content.binaryData ?? {})]);
  const out: Record<string, string> = {};
  // One key is the whole content (most sources: a values.yaml): its digest, if known, is that key's.
  if (whole !== undefined && keys.size === 1) {
    out[keys.values().next().value!] = whole;
    return out;
  }
  for (const key of keys) {
    const data = content.data?.[key];
    const binary = content.binaryData?.[key];
    out[key] = contentDigest({
      ...(data === undefined ? {} : { data: { [key]: data } }),
      ...(binary === undefined ? {} : { binaryData: { [key]: binary } }),
    });
  }
  return out;
}

/** Recorded for a consumed key the content does not have: its appearance is a change too. */
export const ABSENT_KEY = '-';

/** The digests of the given keys, ABSENT_KEY for a key not in the content. */
export function selectKeyDigests(digests: Readonly<Record<string, string>>, keys: Iterable<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [...keys].sort()) out[key] = digests[key] ?? ABSENT_KEY;
  return out;
}

// ConfigMap and Secret keys are [-._a-zA-Z0-9]+, so ',' and '=' cannot occur in them.
const KEY_DIGEST = /^([-._a-zA-Z0-9]+)=(sha256:[0-9a-f]{64}|-)$/;

/** `key=sha256:...,other=-`, sorted: the key-digests annotation. */
export function encodeKeyDigests(digests: Readonly<Record<string, string>>): string {
  return Object.keys(digests)
    .sort()
    .map((key) => `${key}=${digests[key]}`)
    .join(',');
}

/** Parses the key-digests annotation; entries that do not parse are treated as never recorded. */
export function parseKeyDigests(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of value?.split(',') ?? []) {
    const match = KEY_DIGEST.exec(entry.trim());
    if (match) out[match[1]!] = match[2]!;
  }
  return out;
}
