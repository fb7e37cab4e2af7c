// Every setting once: its flag, environment variable, default, help and chart value. The command
// line (cli.ts), the defaults and the error messages (config.ts), the configuration
// reference and the chart's values (checked by a test) are made from this table, so they cannot
// drift apart.
import { DEFAULT_KEY_DOMAIN } from './keys.js';

/** The allowed values of the flags that have few: the schema (config.ts) and the help read these. */
export const TRIGGER_MODES = ['force', 'reconcile'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export interface Flag {
  /** The setting's name among the raw settings (config.ts RawSettings). */
  key: string;
  /** The validated field it becomes, when named otherwise (cacheSyncTimeout -> cacheSyncTimeoutMs). */
  field?: string;
  flag: `--${string}`;
  /** How its value is written: `<duration>`, `<n>`, `[bool]` (a bare flag is true)... */
  value: string;
  /** The seed's environment variable for it (flags win). */
  env?: string;
  /** Its default as given to the parser; undefined: none. */
  default?: string;
  /** The default as a reader should see it, where the value alone would mislead. */
  defaultText?: string;
  help: string;
  /** The allowed values, when they are few. */
  choices?: readonly string[];
  /** Read by every command (what to watch, how keys are named), or by the controller alone. */
  scope: 'all' | 'run';
  /** The chart value that sets it; undefined: the chart sets it otherwise (see its templates). */
  chart?: string;
}

export const FLAGS: readonly Flag[] = [
  { key: 'kubeconfig', flag: '--kubeconfig', value: '<path>', defaultText: 'KUBECONFIG, ~/.kube/config, or in-cluster', help: 'kubeconfig file', scope: 'all' },
  { key: 'keyDomain', flag: '--key-domain', value: '<domain>', default: DEFAULT_KEY_DOMAIN, help: 'domain of every label and annotation key', scope: 'all', chart: 'keyDomain' },
  { key: 'defaultNamespace', flag: '--default-namespace', value: '<namespace>', default: 'flux-system', help: 'namespace of target HelmReleases when a source names none', scope: 'all', chart: 'defaultNamespace' },
  { key: 'cacheSyncTimeout', field: 'cacheSyncTimeoutMs', flag: '--cache-sync-timeout', value: '<duration>', env: 'CACHE_SYNC_TIMEOUT', default: '2m', help: 'startup cache sync limit, Go syntax', scope: 'all', chart: 'cacheSyncTimeout' },
  { key: 'watchNamespaces', flag: '--watch-namespaces', value: '<list>', default: '', defaultText: 'all', help: 'comma-separated namespaces of sources and HelmReleases to watch', scope: 'all', chart: 'watchNamespaces' },
  {
    key: 'watchLabelSelector',
    flag: '--watch-label-selector',
    value: '<selector>',
    default: '',
    defaultText: 'none',
    help: "label selector on sources, ANDed with the watch label; Flux's sharding: sharding.fluxcd.io/key=shard1",
    scope: 'all',
    chart: 'watchLabelSelector',
  },
  { key: 'helmreleaseLabelSelector', flag: '--helmrelease-label-selector', value: '<selector>', default: '', defaultText: 'none', help: 'only HelmReleases matching it are triggered or marked for', scope: 'all', chart: 'helmreleaseLabelSelector' },
  {
    key: 'enableHrAutodiscovery',
    field: 'autodiscovery',
    flag: '--enable-hr-autodiscovery',
    value: '[bool]',
    default: 'true',
    help: 'label and trigger the sources HelmReleases read through spec.valuesFrom',
    scope: 'all',
    chart: 'enableHrAutodiscovery',
  },
  { key: 'watchSecrets', flag: '--watch-secrets', value: '[bool]', default: 'true', help: 'watch, read and patch labeled Secrets; false: ConfigMaps only, and no access to Secrets is needed', scope: 'all', chart: 'watchSecrets' },
  {
    key: 'deferToFluxWatch',
    flag: '--defer-to-flux-watch',
    value: '[bool]',
    default: 'true',
    help: 'leave sources labeled reconcile.fluxcd.io/watch=Enabled to helm-controller for the HelmReleases of their namespace that read them',
    scope: 'all',
    chart: 'deferToFluxWatch',
  },
  { key: 'noCrossNamespaceRefs', flag: '--no-cross-namespace-refs', value: '[bool]', default: 'false', help: 'refuse sources that target HelmReleases in another namespace', scope: 'all', chart: 'noCrossNamespaceRefs' },
  { key: 'kubeApiQps', flag: '--kube-api-qps', value: '<n>', default: '50', help: "client-side limit of requests per second to the API server, all kinds together (Flux's default); 0: unlimited", scope: 'all', chart: 'kubeApiQps' },
  { key: 'kubeApiBurst', flag: '--kube-api-burst', value: '<n>', default: '300', help: 'requests that may go at once above --kube-api-qps after a quiet spell', scope: 'all', chart: 'kubeApiBurst' },
  {
    key: 'triggerWindows',
    flag: '--trigger-windows',
    value: '<json>',
    default: '',
    defaultText: 'always',
    help: 'when changes may reach HelmReleases without their own trigger-windows annotation, e.g. \'[{"cron": "0 8 * * 1-5", "timeZone": "Europe/Berlin", "window": "8h"}]\'',
    scope: 'all',
    chart: 'triggerWindows',
  },
  {
    key: 'waveTimeout',
    field: 'waveTimeoutMs',
    flag: '--wave-timeout',
    value: '<duration>',
    default: '15m',
    help: 'a triggered HelmRelease of a wave or a plan step not healthy this long after its trigger has failed, and halts the rollout',
    scope: 'all',
    chart: 'waveTimeout',
  },
  { key: 'triggerMode', flag: '--trigger-mode', value: '<mode>', default: 'force', choices: TRIGGER_MODES, help: 'force: requestedAt + forceAt; reconcile: requestedAt only', scope: 'run', chart: 'triggerMode' },
  { key: 'maxConcurrency', flag: '--max-concurrency', value: '<n>', env: 'MAX_CONCURRENCY', default: '10', help: 'concurrent reconciles', scope: 'run', chart: 'maxConcurrency' },
  { key: 'resyncPeriod', field: 'resyncPeriodMs', flag: '--resync-period', value: '<duration>', default: '10m', help: 'how often every watched source is reconciled again', scope: 'run', chart: 'resyncPeriod' },
  { key: 'logLevel', flag: '--log-level', value: '<level>', env: 'LOG_LEVEL', default: 'info', choices: LOG_LEVELS, help: 'the least severe log lines written', scope: 'run', chart: 'logLevel' },
  { key: 'debounce', field: 'debounceMs', flag: '--debounce', value: '<duration>', default: '1s', help: 'changes for one HelmRelease within this window become one trigger', scope: 'run', chart: 'debounce' },
  {
    key: 'maxTriggersPerSecond',
    flag: '--max-triggers-per-second',
    value: '<n>',
    default: '10',
    help: 'global throttle across all HelmReleases (a token bucket); waiting triggers are never dropped; 0: unlimited',
    scope: 'run',
    chart: 'maxTriggersPerSecond',
  },
  { key: 'resetStalled', flag: '--reset-stalled', value: '[bool]', default: 'true', help: 'when a HelmRelease is Stalled (retries exhausted), also set reconcile.fluxcd.io/resetAt', scope: 'run', chart: 'resetStalled' },
  {
    key: 'minTriggerInterval',
    field: 'minTriggerIntervalMs',
    flag: '--min-trigger-interval',
    value: '<duration>',
    default: '30s',
    help: 'a HelmRelease is triggered at most once per interval; later changes wait, never dropped',
    scope: 'run',
    chart: 'minTriggerInterval',
  },
  { key: 'dryRun', flag: '--dry-run', value: '[bool]', default: 'false', help: 'log and emit Events for what would be triggered; patch nothing', scope: 'run', chart: 'dryRun' },
  // The chart sets the addresses from metrics.port and probes.port.
  { key: 'metricsBindAddress', flag: '--metrics-bind-address', value: '<address>', default: ':8080', help: 'address of the /metrics endpoint, 0 to disable', scope: 'run' },
  { key: 'healthProbeBindAddress', flag: '--health-probe-bind-address', value: '<address>', default: ':8081', help: 'address of /healthz and /readyz, 0 to disable', scope: 'run' },
  // In a cluster the command turns it on; the chart sets it from leaderElection.enabled.
  { key: 'leaderElect', flag: '--leader-elect', value: '[bool]', default: 'false', defaultText: 'true in a cluster, false outside', help: 'leader election on a Lease, so only one replica writes', scope: 'run' },
  {
    key: 'leaderElectionNamespace',
    flag: '--leader-election-namespace',
    value: '<namespace>',
    default: 'helmrelease-trigger-operator-system',
    defaultText: "the pod's, else helmrelease-trigger-operator-system",
    help: 'namespace of the Lease',
    scope: 'run',
  },
  { key: 'leaderElectionId', flag: '--leader-election-id', value: '<name>', default: 'helmrelease-trigger-operator', help: 'name of the Lease', scope: 'run' },
  { key: 'leaderElectLeaseDuration', field: 'leaseDurationMs', flag: '--leader-elect-lease-duration', value: '<duration>', default: '15s', help: 'how long a standby waits before taking over an unrenewed lease', scope: 'run' },
  { key: 'leaderElectRenewDeadline', field: 'renewDeadlineMs', flag: '--leader-elect-renew-deadline', value: '<duration>', default: '10s', help: 'how long the leader retries renewing before it stops leading', scope: 'run' },
  { key: 'leaderElectRetryPeriod', field: 'retryPeriodMs', flag: '--leader-elect-retry-period', value: '<duration>', default: '2s', help: 'how often candidates try to acquire or renew', scope: 'run' },
  {
    key: 'maxUpgradesInFlight',
    flag: '--max-upgrades-in-flight',
    value: '<n>',
    default: '0',
    help: 'no more HelmReleases are triggered while this many triggered ones have not finished upgrading; 0: unlimited',
    scope: 'run',
    chart: 'maxUpgradesInFlight',
  },
  {
    key: 'eventsAddr',
    flag: '--events-addr',
    value: '<url>',
    default: '',
    defaultText: 'off',
    help: "also post every Event to Flux's notification-controller, e.g. http://notification-controller.flux-system.svc.cluster.local./",
    scope: 'run',
    chart: 'eventsAddr',
  },
  {
    key: 'gracefulShutdownTimeout',
    field: 'gracefulShutdownTimeoutMs',
    flag: '--graceful-shutdown-timeout',
    value: '<duration>',
    default: '30s',
    help: 'on SIGTERM, how long in-flight work may take',
    scope: 'run',
    chart: 'gracefulShutdownTimeout',
  },
];

/** The default as help and docs/configuration.md show it: one way for every flag. */
export const shownDefault = (f: Flag): string => f.defaultText ?? (f.default === undefined || f.default === '' ? 'none' : f.default);

/** The flag's help line: what it does, its environment variable, its allowed values and its default. */
export function flagHelp(f: Flag): string {
  const choices = f.choices ? ` [${f.choices.join('|')}]` : '';
  return `${f.help}${choices}${f.env ? ` [env ${f.env}]` : ''} (default: ${shownDefault(f)})`;
}

/** docs/configuration.md's reference: one row per flag, from this table. */
export function referenceTable(): string {
  const rows = FLAGS.map((f) => `| \`${f.flag}\` | ${f.env ? `\`${f.env}\`` : ''} | \`${shownDefault(f)}\` | ${f.chart ? `\`${f.chart}\`` : ''} | ${f.help.replaceAll('|', '\\|')}${f.choices ? ` (${f.choices.join(', ')})` : ''} |`);
  return ['| flag | env | default | chart value | what it does |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}
