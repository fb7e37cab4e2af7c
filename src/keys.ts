// Label and annotation names. The domain is configurable (--key-domain) so that clusters labeled for
// another edition of the operator work unchanged.
export const DEFAULT_KEY_DOMAIN = 'uburro.github.com';

/** The earliest edition's spelling of the watch label; accepted whatever the key domain. */
export const LEGACY_WATCH_LABEL = 'github.com/uburro/helmrelease-trigger-operator';

export interface Keys {
  domain: string;
  watchLabel: string;
  /** Every label key that marks a watched source, each selected with value "true". */
  watchLabels: readonly string[];
  targetNames: string;
  targetNamespace: string;
  configDigest: string;
}

export function keysFor(domain: string = DEFAULT_KEY_DOMAIN): Keys {
  const watchLabel = `${domain}/helmrelease-trigger-operator`;
  return {
    domain,
    watchLabel,
    watchLabels: watchLabel === LEGACY_WATCH_LABEL ? [watchLabel] : [watchLabel, LEGACY_WATCH_LABEL],
    targetNames: `${domain}/helmreleases-name`,
    targetNamespace: `${domain}/helmreleases-namespace`,
    configDigest: `${domain}/config-digest`,
  };
}

/** Flux's reconcile request annotations, as written by `flux reconcile hr [--force]`. */
export const FLUX_REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
export const FLUX_FORCE_AT = 'reconcile.fluxcd.io/forceAt';
