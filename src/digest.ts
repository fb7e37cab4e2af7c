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

function lengthPrefixed(hash: ReturnType<typeof createHash>, bytes: Buffer): void {
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(bytes.length));
  hash.update(len);
  hash.update(bytes);
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
    lengthPrefixed(hash, Buffer.from(`${section}:${keys.length}`));
    for (const key of keys) {
      lengthPrefixed(hash, Buffer.from(key, 'utf8'));
      lengthPrefixed(hash, Buffer.from(entries![key]!, encoding));
    }
  }
  return `${DIGEST_PREFIX}${hash.digest('hex')}`;
}
