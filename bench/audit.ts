// The control plane's audit log (JSON lines, stage ResponseComplete; see the policy in
// test/harness/controlplane.ts: metadata of every create/update/patch/delete of ConfigMaps,
// Secrets, Events, HelmReleases and Leases). Read from a byte offset, so a phase reads only its own
// lines of a log that grows to tens of MB over a run.
import { closeSync, openSync, readSync, statSync } from 'node:fs';

export interface AuditEvent {
  stage: string;
  verb: string;
  requestURI: string;
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; apiGroup?: string; subresource?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** hrto's field manager, on every write it sends (src/sources/objects.ts FIELD_MANAGER). */
export const HRTO_FIELD_MANAGER = 'helmrelease-trigger-operator';

/** A request hrto sent: its field manager in the URI, or (from the HTTP-layer rewrite on) its User-Agent `hrto/<version>`. */
export function byHrto(e: AuditEvent): boolean {
  return e.requestURI.includes(`fieldManager=${HRTO_FIELD_MANAGER}`) || (e.userAgent ?? '').startsWith('hrto/');
}

/** A trigger: a PATCH of a HelmRelease itself (not its status). */
export function isReleasePatch(e: AuditEvent): boolean {
  return e.verb === 'patch' && e.objectRef?.resource === 'helmreleases' && !e.objectRef.subresource;
}

/** Microseconds since the epoch from an audit timestamp (RFC 3339 with microseconds). */
export function micros(ts: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return NaN;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  const fraction = (m[2] ?? '').padEnd(6, '0').slice(0, 6);
  return seconds * 1000 + Number(fraction);
}

/** A position in the audit log: the file (inode) and the byte offset. */
export interface AuditMark {
  ino: number;
  offset: number;
}

/**
 * kube-apiserver rotates its audit log at --audit-log-maxsize (100 MB unless 0): run.ts starts the
 * control plane with 0 (one growing file), and `since` refuses to read across a rotation rather
 * than return nothing.
 */
export class AuditLog {
  constructor(readonly path: string) {}

  /** The current end of the log: pass it to `since` to read only what comes after. */
  mark(): AuditMark {
    try {
      const st = statSync(this.path);
      return { ino: st.ino, offset: st.size };
    } catch {
      return { ino: 0, offset: 0 };
    }
  }

  /**
   * Every ResponseComplete event written after `mark` that `keep` accepts (default: all). A long run
   * logs hundreds of thousands of events: `keep` drops the rest as each line is parsed, so they are
   * never all held at once.
   */
  since(mark: AuditMark, keep: (e: AuditEvent) => boolean = () => true): AuditEvent[] {
    const now = this.mark();
    if (mark.ino !== 0 && (now.ino !== mark.ino || now.offset < mark.offset)) {
      throw new Error(`bench: ${this.path} was rotated since it was marked (run the API server with --audit-log-maxsize=0)`);
    }
    const offset = mark.ino === 0 ? 0 : mark.offset;
    const end = now.offset;
    if (end <= offset) return [];
    const fd = openSync(this.path, 'r');
    const out: AuditEvent[] = [];
    try {
      const chunkSize = 16 * 2 ** 20;
      let pos = offset;
      let rest = '';
      while (pos < end) {
        const buf = Buffer.alloc(Math.min(chunkSize, end - pos));
        const n = readSync(fd, buf, 0, buf.length, pos);
        if (n <= 0) break;
        pos += n;
        const lines = (rest + buf.toString('utf8', 0, n)).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (!line) continue;
          const e = JSON.parse(line) as AuditEvent;
          if (e.stage === 'ResponseComplete' && keep(e)) out.push(e);
        }
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }
}

/** The fieldManager query parameter of a request, if any. */
export function fieldManagerOf(e: AuditEvent): string | undefined {
  const q = e.requestURI.indexOf('?');
  return q < 0 ? undefined : (new URLSearchParams(e.requestURI.slice(q + 1)).get('fieldManager') ?? undefined);
}

/**
 * One write as reactionTimes matched it, in microseconds since the epoch: received and completed
 * (ResponseComplete), the trigger paired with it and the release's last trigger before the write
 * (so a scenario with a minimum interval can tell the wait the interval imposed from the rest).
 */
export interface ReactionPair {
  name: string;
  received: number;
  done: number;
  trigger: number | undefined;
  previous: number | undefined;
}

/**
 * Reaction times from the audit log: for each ConfigMap PATCH in `ns` by `writeManager` (the
 * ConfigMap is named as its HelmRelease), the first PATCH of that HelmRelease accepted by
 * `isTrigger` after the write; reaction = trigger requestReceivedTimestamp - the write's
 * stageTimestamp (ResponseComplete), in ms from microsecond stamps.
 *
 * "After the write" is after the write's requestReceivedTimestamp, not after its stageTimestamp: the
 * watch event leaves the API server when etcd commits, before the write's own response completes,
 * so a quick reaction can land before ResponseComplete (a negative reaction, counted in `early`).
 * Matching only triggers after ResponseComplete would give such a write the NEXT write's trigger
 * (about 2 s later at 25 changes/s over 50 releases). `strictRule` gives the figures by that rule too.
 */
export function reactionTimes(
  events: readonly AuditEvent[],
  ns: string,
  writeManager: string,
  isTrigger: (e: AuditEvent) => boolean,
): { ms: number[]; writes: number; unmatched: number; early: number; strictRule: { ms: number[]; unmatched: number }; pairs: ReactionPair[] } {
  const writes = events.filter((e) => e.verb === 'patch' && e.objectRef?.resource === 'configmaps' && e.objectRef.namespace === ns && fieldManagerOf(e) === writeManager);
  const triggers = new Map<string, number[]>();
  for (const e of events) {
    if (!isReleasePatch(e) || e.objectRef?.namespace !== ns || !isTrigger(e)) continue;
    const name = e.objectRef.name ?? '';
    const list = triggers.get(name) ?? [];
    list.push(micros(e.requestReceivedTimestamp));
    triggers.set(name, list);
  }
  for (const list of triggers.values()) list.sort((a, b) => a - b);
  const ms: number[] = [];
  const strict: number[] = [];
  let unmatched = 0;
  let strictUnmatched = 0;
  let early = 0;
  const pairs: ReactionPair[] = [];
  for (const w of writes) {
    const received = micros(w.requestReceivedTimestamp);
    const done = micros(w.stageTimestamp);
    const name = w.objectRef?.name ?? '';
    const list = triggers.get(name) ?? [];
    const at = list.findIndex((t) => t > received);
    const next = at < 0 ? undefined : list[at];
    pairs.push({ name, received, done, trigger: next, previous: at < 0 ? list.at(-1) : at > 0 ? list[at - 1] : undefined });
    if (next === undefined) unmatched++;
    else {
      ms.push((next - done) / 1000);
      if (next <= done) early++;
    }
    const afterDone = list.find((t) => t > done);
    if (afterDone === undefined) strictUnmatched++;
    else strict.push((afterDone - done) / 1000);
  }
  return { ms, writes: writes.length, unmatched, early, strictRule: { ms: strict, unmatched: strictUnmatched }, pairs };
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete']);

/**
 * What an operator wrote in `ns` (requests accepted by `sent`): its triggers (HelmRelease patches)
 * and every write, by resource, so a figure can say what one trigger costs in requests.
 */
export function operatorWrites(events: readonly AuditEvent[], ns: string, sent: (e: AuditEvent) => boolean): { triggers: number; writes: number; byResource: Record<string, number>; perTrigger: number } {
  const mine = events.filter((e) => e.objectRef?.namespace === ns && WRITE_VERBS.has(e.verb) && sent(e));
  const byResource: Record<string, number> = {};
  for (const e of mine) {
    const what = `${e.verb} ${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
    byResource[what] = (byResource[what] ?? 0) + 1;
  }
  const triggers = mine.filter(isReleasePatch).length;
  return { triggers, writes: mine.length, byResource, perTrigger: triggers === 0 ? NaN : Number((mine.length / triggers).toFixed(2)) };
}
