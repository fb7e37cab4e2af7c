// Label and annotation names. The domain is configurable (--key-domain) so that clusters labeled for
// another edition of the operator work unchanged.
export const DEFAULT_KEY_DOMAIN = 'uburro.github.com';

/**
 * The earliest edition's spelling of the watch label. It has two '/', so it is not a valid label key:
 * the API server refuses any object carrying it and any selector naming it. hrto accepts it wherever
 * a label key is checked, but there is nothing to watch for it (see isLabelKey).
 */
export const LEGACY_WATCH_LABEL = 'github.com/uburro/helmrelease-trigger-operator';

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes' qualified-name rule for label keys: [DNS subdomain prefix '/'] name. */
export function isLabelKey(key: string): boolean {
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts.at(-1)!;
  const prefix = parts.length === 2 ? parts[0]! : undefined;
  return LABEL_NAME.test(name) && (prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix)));
}

export interface Keys {
  domain: string;
  watchLabel: string;
  /** Every label key that marks a watched source, each selected with value "true". */
  watchLabels: readonly string[];
  /** Spellings accepted but impossible on a real object (not valid label keys). */
  unwatchableLabels: readonly string[];
  targetNames: string;
  targetNamespace: string;
  configDigest: string;
  /** Digest of each values key that HelmReleases read through valuesFrom, as last acted on. */
  keyDigests: string;
  /** What autodiscovery added to a source (label, namespace, names), so it removes only that. */
  autodiscovered: string;
  /** `disabled` on a source or a HelmRelease pauses hrto's triggers from it or of it. */
  trigger: string;
  /** A short hash of every key of the content as last recorded: names the keys a change touched. */
  keyHashes: string;
  /** A HelmRelease's rollout wave: an integer, lower waves first. */
  wave: string;
  /** A HelmRelease's trigger windows (JSON), overriding --trigger-windows. */
  triggerWindows: string;
  /** A content digest whose change bypasses windows and waves (on a source or a HelmRelease). */
  rolloutNow: string;
  /** A content digest whose halted rollout continues (on a source). */
  rolloutResume: string;
  /** hrto's record of its last trigger on a HelmRelease, for reading the outcome. */
  rolloutRecord: string;
  /** hrto's mark on a HelmRelease it suspended to hold a change (see rollout/hold.ts). */
  suspendedBy: string;
  /** On a source: which halts and skipped releases of its current change were reported (once, across restarts). */
  rolloutReported: string;
  /** On a source: its rollout plan (JSON: steps by label selector, maxUpdate, bake), see rollout/plan.ts. */
  rolloutPlan: string;
}

export function keysFor(domain: string = DEFAULT_KEY_DOMAIN): Keys {
  const watchLabel = `${domain}/helmrelease-trigger-operator`;
  const spellings = [...new Set([watchLabel, LEGACY_WATCH_LABEL])];
  return {
    domain,
    watchLabel,
    watchLabels: spellings.filter(isLabelKey),
    unwatchableLabels: spellings.filter((k) => !isLabelKey(k)),
    targetNames: `${domain}/helmreleases-name`,
    targetNamespace: `${domain}/helmreleases-namespace`,
    configDigest: `${domain}/config-digest`,
    keyDigests: `${domain}/key-digests`,
    autodiscovered: `${domain}/autodiscovered`,
    trigger: `${domain}/trigger`,
    keyHashes: `${domain}/key-hashes`,
    wave: `${domain}/wave`,
    triggerWindows: `${domain}/trigger-windows`,
    rolloutNow: `${domain}/rollout-now`,
    rolloutResume: `${domain}/rollout-resume`,
    rolloutRecord: `${domain}/rollout`,
    suspendedBy: `${domain}/suspended-by`,
    rolloutReported: `${domain}/rollout-reported`,
    rolloutPlan: `${domain}/rollout-plan`,
  };
}

/** Flux's reconcile request annotations, as written by `flux reconcile hr [--force]`. */
export const FLUX_REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
export const FLUX_FORCE_AT = 'reconcile.fluxcd.io/forceAt';
export const FLUX_RESET_AT = 'reconcile.fluxcd.io/resetAt';

/** The value of the trigger annotation that pauses hrto. */
export const TRIGGER_DISABLED = 'disabled';
