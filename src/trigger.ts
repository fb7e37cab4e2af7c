// The trigger: the merge patch `flux reconcile hr NAME [--force]` sends to a HelmRelease.
import { FLUX_FORCE_AT, FLUX_REQUESTED_AT, FLUX_RESET_AT } from './keys.js';

export type TriggerMode = 'force' | 'reconcile';

/** Go's time.RFC3339Nano in UTC: fraction up to 9 digits, trailing zeros dropped. */
export function formatRFC3339Nano(epochNanos: bigint): string {
  const ms = Number(epochNanos / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const fraction = (epochNanos % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${fraction ? `.${fraction}` : ''}Z`;
}

/**
 * The wall clock, never returning the same instant twice so back-to-back requests stay distinct. Read
 * from Date.now(), not performance.now(): requestedAt is compared with Date.now() (the minimum
 * interval, a trigger's deadline), and the monotonic clock drifts from the wall clock over a long uptime.
 */
export function monotonicNanoClock(now: () => number = Date.now): () => bigint {
  let last = 0n;
  return () => {
    const current = BigInt(Math.round(now() * 1000)) * 1000n;
    last = current > last ? current : last + 1n;
    return last;
  };
}

/** With `reset`, also resetAt, as `flux reconcile hr --reset` does for a release that exhausted its retries. */
export function triggerPatch(mode: TriggerMode, requestedAt: string, reset = false): { metadata: { annotations: Record<string, string> } } {
  const annotations: Record<string, string> = { [FLUX_REQUESTED_AT]: requestedAt };
  if (mode === 'force') annotations[FLUX_FORCE_AT] = requestedAt;
  if (reset) annotations[FLUX_RESET_AT] = requestedAt;
  return { metadata: { annotations } };
}
