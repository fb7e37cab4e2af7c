// The shipped ValidatingAdmissionPolicy against the real API server: malformed hrto annotations are
// refused by a server-side apply with a message naming the annotation, valid ones pass, and the
// policy refuses nothing the controller accepts (each case is also read by the controller's own
// parsers). Updates that leave a bad value alone pass, hrto's own writes pass, the chart renders
// the same policy as kustomize, and without the policy hrto still reports the same input.
//
// Other test files write malformed annotations on purpose against the same API server, so the
// policy is never bound cluster-wide here: the shipped binding is applied with its namespaceSelector
// narrowed to namespaces this file labels.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type KubernetesObject, KubernetesObjectApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { keysFor, TRIGGER_DISABLED } from '../../src/keys.js';
import { parseTargets } from '../../src/mapping/targets.js';
import { namesContent, parseWave } from '../../src/rollout/facts.js';
import { parseWindows } from '../../src/rollout/window.js';
import { parsePlan } from '../../src/rollout/plan.js';
import { apply, chartDir, docs, helm, helmTemplate, kustomize, NAME, type Obj } from '../harness/manifests.js';
import { startHrto, waitForEvent } from './hrto.js';
import {
  core,
  createNamespace,
  custom,
  eventually,
  helmRelease,
  HR,
  kc,
  labeledConfigMap,
  NAMES,
  NAMESPACE,
  patchConfigMap,
  readSource,
  waitForRecordedDigest,
  WATCH_LABEL,
} from './support.js';

const keys = keysFor();
const POLICY = `${NAME}-annotations`;
const WAVE = keys.wave;
const WINDOWS = keys.triggerWindows;
const ROLLOUT_NOW = keys.rolloutNow;
const ROLLOUT_RESUME = keys.rolloutResume;
const TRIGGER = keys.trigger;
const PLAN = keys.rolloutPlan;
/** Namespaces carrying this label (with this run's value) are the only ones the test binding selects. */
const BOUND = 'hrto.test/admission';
const RUN = randomBytes(4).toString('hex');
const MANAGER = 'hrto-admission-test';

const objects = kc.makeApiClient(KubernetesObjectApi);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

type Kind = 'ConfigMap' | 'Secret' | 'HelmRelease';

function object(kind: Kind, namespace: string, name: string, annotations: Record<string, string>, content = '1'): Obj {
  const metadata = { name, namespace, annotations };
  if (kind === 'HelmRelease') return { ...(helmRelease(namespace, name) as Obj), metadata };
  if (kind === 'Secret') return { apiVersion: 'v1', kind, metadata, data: { 'values.yaml': Buffer.from(`a: ${content}\n`).toString('base64') } };
  return { apiVersion: 'v1', kind, metadata, data: { 'values.yaml': `a: ${content}\n` } };
}

type Verdict = { admitted: true } | { admitted: false; message: string };

/** What the API server said to a write: admitted, or refused by this policy (any other error throws). */
async function verdict(write: Promise<unknown>): Promise<Verdict> {
  try {
    await write;
    return { admitted: true };
  } catch (err) {
    const body = (err as { body?: unknown }).body;
    let message: string;
    try {
      message = (JSON.parse(typeof body === 'string' ? body : JSON.stringify(body)) as { message?: string }).message ?? '';
    } catch {
      throw err;
    }
    if (!message.includes(`ValidatingAdmissionPolicy '${POLICY}`)) throw err;
    return { admitted: false, message };
  }
}

/** Server-side apply, as `kubectl apply --server-side` sends it. */
const ssa = (obj: Obj, dryRun?: 'All'): Promise<Verdict> =>
  verdict(objects.patch(obj, undefined, dryRun, MANAGER, true, PatchStrategy.ServerSideApply));

/**
 * A plain JSON create: for values with Unicode spaces, which an apply's YAML body does not carry
 * unchanged (YAML reads U+0085 as a line break).
 */
function createJson(obj: Obj): Promise<Verdict> {
  const namespace = obj.metadata.namespace!;
  if (obj.kind === 'HelmRelease') return verdict(custom.createNamespacedCustomObject({ ...HR, namespace, body: obj }));
  if (obj.kind === 'Secret') return verdict(core.createNamespacedSecret({ namespace, body: obj }));
  return verdict(core.createNamespacedConfigMap({ namespace, body: obj }));
}

async function bind(namespace: string, label = RUN): Promise<void> {
  await core.patchNamespace({ name: namespace, body: { metadata: { labels: { [BOUND]: label } } } }, mergePatch);
}

let probes = 0;
/** Waits until the API server enforces the policy in the namespace (it learns of bindings by a watch). */
async function enforced(namespace: string, key: string = keys.targetNames, kind: Kind = 'ConfigMap'): Promise<void> {
  await eventually(`the admission policy enforced in ${namespace}`, async () => {
    const v = await ssa(object(kind, namespace, `probe-${probes++}`, { [key]: 'Bad_Name' }), 'All');
    return !v.admitted;
  });
}

/** The shipped policy and binding, as config/default renders them. */
async function shipped(): Promise<{ policy: Obj; binding: Obj }> {
  const list = await kustomize('default');
  const policy = list.find((o) => o.kind === 'ValidatingAdmissionPolicy');
  const binding = list.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding');
  assert.ok(policy && binding, 'config/default renders the policy and its binding');
  return { policy, binding };
}

/**
 * Renamed for this run: on a cluster of HRTO_TEST_KUBECONFIG with hrto installed, the test neither
 * changes nor deletes the real policy.
 */
function forRun(policy: Obj, suffix = ''): Obj {
  const copy = structuredClone(policy);
  copy.metadata.name = `${policy.metadata.name}-test-${RUN}${suffix}`;
  return copy;
}

/** The shipped binding, renamed for this run and narrowed to the namespaces labeled with `label`. */
function narrowed(binding: Obj, label: string, policyName: string): Obj {
  const copy = structuredClone(binding) as Obj & { spec: Record<string, unknown> };
  copy.metadata.name = `${binding.metadata.name}-test-${label}`;
  copy.spec.policyName = policyName;
  copy.spec.matchResources = { namespaceSelector: { matchLabels: { [BOUND]: label } } };
  return copy;
}

const created: KubernetesObject[] = [];
async function applyForRun(list: Obj[]): Promise<void> {
  await apply(kc, list);
  created.push(...list.map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name } })));
}

/** What the controller makes of a value: does it read it without a Warning (or honour it)? */
function controllerAccepts(kind: Kind, key: string, value: string): boolean {
  const source = kind !== 'HelmRelease';
  const reads = (fn: () => unknown): boolean => {
    try {
      fn();
      return true;
    } catch {
      return false;
    }
  };
  if (key === keys.targetNames) return !source || reads(() => parseTargets({ [key]: value }, keys, 'default'));
  if (key === keys.targetNamespace) return !source || reads(() => parseTargets({ [keys.targetNames]: 'app', [key]: value }, keys, 'default'));
  if (key === WAVE) return source || reads(() => parseWave(value, key));
  if (key === WINDOWS) return source || reads(() => parseWindows(value, key));
  // A digest names a content when it is a prefix of it: here, of itself.
  if (key === ROLLOUT_NOW) return namesContent(value, value.trim());
  if (key === ROLLOUT_RESUME) return !source || namesContent(value, value.trim());
  if (key === TRIGGER) return value === TRIGGER_DISABLED;
  if (key === PLAN) return !source || reads(() => parsePlan(value, key));
  throw new Error(`no controller reading for ${key}`);
}

interface Case {
  kind: Kind;
  key: string;
  value: string;
  admitted: boolean;
  /** Sent as a JSON create instead of an apply (Unicode spaces). */
  json?: true;
  /** Admitted, but the controller refuses it: what no regular expression can tell. */
  controllerOnly?: true;
}

const window = (w: Record<string, unknown>): string => JSON.stringify([w]);
const W = { cron: '0 8 * * 1-5', timeZone: 'Europe/Berlin', window: '8h' };
const HEX = '0123456789abcdef'.repeat(4);
const plan = (steps: Record<string, unknown>[], extra: Record<string, unknown> = {}): string => JSON.stringify({ steps, ...extra });
const CANARY = { name: 'canary', selector: 'ring=canary', bake: '10m' };

const cases: Case[] = [
  // Target names: comma-separated, trimmed, empty entries dropped, each a DNS-1123 subdomain.
  { kind: 'ConfigMap', key: NAMES, value: 'app', admitted: true },
  { kind: 'ConfigMap', key: NAMES, value: ' app , app-2.canary ,, ', admitted: true },
  { kind: 'ConfigMap', key: NAMES, value: 'app, Bad_Name', admitted: false },
  { kind: 'ConfigMap', key: NAMES, value: ' , ', admitted: false },
  { kind: 'ConfigMap', key: NAMES, value: 'a'.repeat(254), admitted: false },
  { kind: 'ConfigMap', key: NAMES, value: 'a'.repeat(253), admitted: true },
  { kind: 'Secret', key: NAMES, value: 'app, Bad_Name', admitted: false },
  { kind: 'Secret', key: NAMES, value: 'app', admitted: true },
  // JavaScript's trim: no-break space and BOM are trimmed, U+0085 is not.
  { kind: 'ConfigMap', key: NAMES, value: '\u00a0app\ufeff', admitted: true, json: true },
  { kind: 'ConfigMap', key: NAMES, value: 'app\u0085', admitted: false, json: true },
  // Not read on a HelmRelease.
  { kind: 'HelmRelease', key: NAMES, value: 'Bad_Name', admitted: true },
  // Target namespace: empty is the default namespace; else a DNS-1123 label.
  { kind: 'ConfigMap', key: NAMESPACE, value: '', admitted: true },
  { kind: 'ConfigMap', key: NAMESPACE, value: '  ', admitted: true },
  { kind: 'ConfigMap', key: NAMESPACE, value: ' apps ', admitted: true },
  { kind: 'ConfigMap', key: NAMESPACE, value: 'Not A Namespace', admitted: false },
  { kind: 'ConfigMap', key: NAMESPACE, value: 'apps.example', admitted: false },
  { kind: 'ConfigMap', key: NAMESPACE, value: 'a'.repeat(64), admitted: false },
  // Wave: an integer of at most 9 digits, trimmed.
  { kind: 'HelmRelease', key: WAVE, value: '1', admitted: true },
  { kind: 'HelmRelease', key: WAVE, value: ' -007 ', admitted: true },
  { kind: 'HelmRelease', key: WAVE, value: '123456789', admitted: true },
  { kind: 'HelmRelease', key: WAVE, value: ' 7\u3000', admitted: true, json: true },
  { kind: 'HelmRelease', key: WAVE, value: 'one', admitted: false },
  { kind: 'HelmRelease', key: WAVE, value: '1.5', admitted: false },
  { kind: 'HelmRelease', key: WAVE, value: '+1', admitted: false },
  { kind: 'HelmRelease', key: WAVE, value: '1234567890', admitted: false },
  { kind: 'HelmRelease', key: WAVE, value: '', admitted: false },
  { kind: 'ConfigMap', key: WAVE, value: 'one', admitted: true },
  // Trigger windows.
  { kind: 'HelmRelease', key: WINDOWS, value: '[]', admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: ' ', admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: window(W), admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: `[\n  ${JSON.stringify(W)},\n  {"cron": "*/5 8 * * mon-fri", "window": "1h30m"}\n]\n`, admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ cron: ' 0 0 8 * * * ', timeZone: '', window: '+1.5h' }), admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ cron: '0\u00a08 * * *', timeZone: ' UTC ', window: '90s' }), admitted: true, json: true },
  // JSON.parse keeps a repeated key's last value; escapes are the controller's to read.
  { kind: 'HelmRelease', key: WINDOWS, value: '[{"cron": 5, "cron": "0 8 * * *", "window": "8h"}]', admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: '[{"cron": {"x": [1, "]"]}, "cron": "0 8 * * *", "window": "8h"}]', admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: '[{"cron": "0 8 * * *", "window": "8\\u0068"}]', admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: '[{"cr\\u006fn": "0 8 * * *", "window": "8h"}]', admitted: true },
  { kind: 'HelmRelease', key: WINDOWS, value: 'not json', admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: JSON.stringify(W), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: "[{'cron': '0 8 * * *', 'window': '8h'}]", admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: `[${JSON.stringify(W)},]`, admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: '[1]', admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, timezone: 'UTC' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ cron: '0 8 * * *' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, cron: '0 8 * *' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, cron: '@daily' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, cron: '0 8 * * * * *' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, window: '8 hours' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, window: '0s' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, window: '-1h' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, window: 8 }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, timeZone: 'Europe Berlin' }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, timeZone: null }), admitted: false },
  { kind: 'HelmRelease', key: WINDOWS, value: '[{"cron": "0 8 * * *", "cron": 5, "window": "8h"}]', admitted: false },
  // What only the controller can tell: ranges, real zones, a cron that never fires, nested values.
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, cron: '61 8 * * *' }), admitted: true, controllerOnly: true },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, timeZone: 'Mars/Olympus' }), admitted: true, controllerOnly: true },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, cron: '0 0 30 2 *' }), admitted: true, controllerOnly: true },
  { kind: 'HelmRelease', key: WINDOWS, value: window({ ...W, timeZone: { zone: 'UTC' } }), admitted: true, controllerOnly: true },
  // rollout-now (sources and releases), rollout-resume (sources): sha256: and 12 to 64 hex digits.
  { kind: 'ConfigMap', key: ROLLOUT_NOW, value: 'sha256:0123456789ab', admitted: true },
  { kind: 'HelmRelease', key: ROLLOUT_NOW, value: ` sha256:${HEX} `, admitted: true },
  { kind: 'HelmRelease', key: ROLLOUT_NOW, value: '\ufeffsha256:0123456789ab', admitted: true, json: true },
  { kind: 'ConfigMap', key: ROLLOUT_NOW, value: 'sha256:0123', admitted: false },
  { kind: 'ConfigMap', key: ROLLOUT_NOW, value: '3f1c2a9b0d4e', admitted: false },
  { kind: 'HelmRelease', key: ROLLOUT_NOW, value: 'sha256:0123456789AB', admitted: false },
  { kind: 'HelmRelease', key: ROLLOUT_NOW, value: `sha256:${HEX}0`, admitted: false },
  { kind: 'Secret', key: ROLLOUT_RESUME, value: 'sha256:0123456789abcdef', admitted: true },
  { kind: 'ConfigMap', key: ROLLOUT_RESUME, value: 'latest', admitted: false },
  { kind: 'HelmRelease', key: ROLLOUT_RESUME, value: 'latest', admitted: true },
  // trigger: only `disabled`, exactly, means anything; anything else would be ignored silently.
  { kind: 'ConfigMap', key: TRIGGER, value: 'disabled', admitted: true },
  { kind: 'HelmRelease', key: TRIGGER, value: 'disabled', admitted: true },
  { kind: 'ConfigMap', key: TRIGGER, value: 'Disabled', admitted: false },
  { kind: 'HelmRelease', key: TRIGGER, value: 'disabled ', admitted: false },
  { kind: 'Secret', key: TRIGGER, value: 'enabled', admitted: false },
  // The rollout plan (sources): a JSON object with steps; maxUpdate, bake and unselected as CEL sees them.
  { kind: 'ConfigMap', key: PLAN, value: plan([CANARY, { selector: 'ring in (eu,us)', maxUpdate: '25%' }]), admitted: true },
  { kind: 'ConfigMap', key: PLAN, value: plan([CANARY, { selector: 'ring=main', maxUpdate: 2 }, { selector: 'x', maxUpdate: '100%', bake: ' -0 ' }], { unselected: 'never' }), admitted: true },
  { kind: 'Secret', key: PLAN, value: `{\n  "steps": [\n    {"selector": "ring=canary", "bake": "1h30m"}\n  ],\n  "unselected": "last"\n}\n`, admitted: true },
  { kind: 'ConfigMap', key: PLAN, value: 'not json', admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: '[]', admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: plan([]), admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: '{"steps": [ ]}', admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a', maxUpdate: '0%' }]), admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a', maxUpdate: '101%' }]), admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a', maxUpdate: '25 %' }]), admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a', maxUpdate: 0 }]), admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a', maxUpdate: -1 }]), admitted: false },
  { kind: 'Secret', key: PLAN, value: plan([{ selector: 'a', bake: 'ten minutes' }]), admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a', bake: '-1m' }]), admitted: false },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a' }], { unselected: 'first' }), admitted: false },
  // What only the controller can tell: selectors, unknown fields, names, escapes.
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'ring=can ary' }]), admitted: true, controllerOnly: true },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a', wave: 1 }]), admitted: true, controllerOnly: true },
  { kind: 'ConfigMap', key: PLAN, value: plan([{ selector: 'a', maxUpdate: 1.5 }]), admitted: true, controllerOnly: true },
  { kind: 'ConfigMap', key: PLAN, value: '{"steps": [{"selector": "a", "bake": "1\\u0030m"}]}', admitted: true },
  // Not read on a HelmRelease.
  { kind: 'HelmRelease', key: PLAN, value: 'not json', admitted: true },
];

let policy: Obj;
let binding: Obj;
/** A namespace the policy is enforced in from the start. */
let boundNs: string;

describe('the admission policy', () => {
  before(async () => {
    ({ policy, binding } = await shipped());
    const ours = forRun(policy);
    await applyForRun([ours, narrowed(binding, RUN, ours.metadata.name)]);
    boundNs = await createNamespace('adm');
    await bind(boundNs);
    await enforced(boundNs);
  });

  after(async () => {
    for (const o of created.reverse()) await objects.delete(o).catch(() => {});
  });

  it('refuses each malformed annotation with a message naming it, admits valid ones, and never refuses what the controller accepts', async () => {
    const refused: string[] = [];
    for (const [i, c] of cases.entries()) {
      const what = `${c.kind} ${c.key}=${JSON.stringify(c.value)}`;
      // A target namespace comes with valid names: only the namespace is judged.
      const annotations = c.key === NAMESPACE ? { [NAMES]: 'app', [c.key]: c.value } : { [c.key]: c.value };
      const obj = object(c.kind, boundNs, `case-${i}`, annotations);
      const v = c.json ? await createJson(obj) : await ssa(obj);
      assert.equal(v.admitted, c.admitted, `${what}: ${v.admitted ? 'admitted' : `refused: ${(v as { message: string }).message}`}`);
      if (!v.admitted) {
        assert.ok(v.message.includes(`denied request: ${c.key}`), `${what}: the message names the annotation: ${v.message}`);
        refused.push(c.key);
      }
      const accepts = controllerAccepts(c.kind, c.key, c.value);
      if (c.controllerOnly) assert.equal(accepts, false, `${what}: the controller refuses it`);
      else assert.equal(accepts, c.admitted, `${what}: the policy agrees with the controller`);
    }
    assert.deepEqual(
      [...new Set(refused)].sort(),
      [NAMES, NAMESPACE, ROLLOUT_NOW, ROLLOUT_RESUME, TRIGGER, WAVE, WINDOWS, PLAN].sort(),
      'every checked annotation is refused in some case',
    );
  });

  it('says what is wrong: the bad names, the value, the cron that is not one', async () => {
    const names = await ssa(object('ConfigMap', boundNs, 'msg-names', { [NAMES]: 'app, Bad_Name, Worse!' }));
    assert.ok(!names.admitted && names.message.includes('not a valid HelmRelease name: "Bad_Name", "Worse!"'), JSON.stringify(names));
    const wave = await ssa(object('HelmRelease', boundNs, 'msg-wave', { [WAVE]: 'one' }));
    assert.ok(!wave.admitted && wave.message.includes(`${WAVE}: "one" is not an integer`), JSON.stringify(wave));
    const cron = await ssa(object('HelmRelease', boundNs, 'msg-cron', { [WINDOWS]: JSON.stringify([W, { ...W, cron: '0 8 * *' }]) }));
    assert.ok(!cron.admitted && cron.message.includes('got "0 8 * *"'), JSON.stringify(cron));
  });

  it('ratchets: an update that leaves a bad value alone is admitted, a new or changed bad value is not', async () => {
    // Created before the namespace is bound: as if they predated the policy.
    const ns = await createNamespace('adm-ratchet');
    const old = { [NAMES]: 'app, Bad_Name', [TRIGGER]: 'off' };
    const oldRelease = { [WAVE]: 'one', [WINDOWS]: 'nope' };
    for (const [kind, annotations] of [['ConfigMap', old], ['Secret', old], ['HelmRelease', oldRelease]] as const) {
      assert.ok((await ssa(object(kind, ns, 'old', annotations))).admitted);
    }
    await bind(ns);
    await enforced(ns);

    // Content, another annotation, the spec, the status: all admitted with the bad values unchanged.
    assert.deepEqual(await ssa(object('ConfigMap', ns, 'old', old, '2')), { admitted: true });
    assert.deepEqual(await ssa(object('Secret', ns, 'old', old, '2')), { admitted: true });
    assert.deepEqual(await verdict(core.patchNamespacedConfigMap({ namespace: ns, name: 'old', body: { metadata: { annotations: { [keys.configDigest]: 'sha256:00' } } } }, mergePatch)), {
      admitted: true,
    });
    const release = object('HelmRelease', ns, 'old', oldRelease) as Obj & { spec: Record<string, unknown> };
    release.spec.interval = '5m';
    assert.deepEqual(await ssa(release), { admitted: true });
    assert.deepEqual(await verdict(custom.patchNamespacedCustomObjectStatus({ ...HR, namespace: ns, name: 'old', body: { status: { observedGeneration: 2 } } }, mergePatch)), {
      admitted: true,
    });

    // A changed bad value, a bad value added: refused.
    assert.equal((await ssa(object('ConfigMap', ns, 'old', { ...old, [TRIGGER]: 'of' }, '2'))).admitted, false);
    assert.equal((await ssa(object('HelmRelease', ns, 'old', { ...oldRelease, [WAVE]: 'two' }))).admitted, false);
    assert.equal((await ssa(object('HelmRelease', ns, 'old', { ...oldRelease, [ROLLOUT_NOW]: 'now' }))).admitted, false);
    // Names are judged one by one: the old bad name may stay beside a new good one, a new bad one not.
    assert.deepEqual(await ssa(object('ConfigMap', ns, 'old', { ...old, [NAMES]: 'Bad_Name,app,other' }, '2')), { admitted: true });
    const worse = await ssa(object('ConfigMap', ns, 'old', { ...old, [NAMES]: 'Bad_Name,app,other,Worse' }, '2'));
    assert.ok(!worse.admitted && worse.message.includes('"Worse"') && !worse.message.includes('"Bad_Name"'), JSON.stringify(worse));
    // Fixed values pass; removing an annotation passes.
    assert.deepEqual(await ssa(object('HelmRelease', ns, 'old', { [WAVE]: '2', [WINDOWS]: '[]' })), { admitted: true });
    assert.deepEqual(await verdict(core.patchNamespacedConfigMap({ namespace: ns, name: 'old', body: { metadata: { annotations: { [TRIGGER]: null } } } }, mergePatch)), {
      admitted: true,
    });
    // Created in a bound namespace, an object cannot get the bad value in the first place.
    assert.equal((await ssa(object('ConfigMap', ns, 'new', old))).admitted, false);
  });

  it("admits hrto's own writes: its digest, and autodiscovery adding a release to a names list holding a name from before the policy", async (t) => {
    const ns = await createNamespace('adm-hrto');
    await custom.createNamespacedCustomObject({ ...HR, namespace: ns, body: helmRelease(ns, 'app', { valuesFrom: [{ kind: 'ConfigMap', name: 'shared' }] }) });
    // From before the policy: a name that is not one, in the annotation autodiscovery rewrites.
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'shared', annotations: { [NAMES]: 'Bad_Name', [NAMESPACE]: ns } }, data: { 'values.yaml': 'a: 1\n' } },
    });
    await core.createNamespacedConfigMap({ namespace: ns, body: labeledConfigMap(ns, 'plain', { targets: 'app', targetNamespace: ns }) });
    await bind(ns);
    await enforced(ns);

    const h = await startHrto({ watchNamespaces: ns, debounce: '0s' });
    t.after(() => h.stop());
    await waitForRecordedDigest(ns, 'plain');
    const shared = await eventually('autodiscovery to add app beside Bad_Name', async () => {
      const src = await readSource('ConfigMap', ns, 'shared');
      return src.annotations[NAMES] === 'Bad_Name,app' ? src : undefined;
    });
    assert.equal(shared.labels[WATCH_LABEL], 'true');
    // The controller's own check stays: the bad name is still reported.
    const event = await waitForEvent(ns, { kind: 'ConfigMap', name: 'shared', reason: 'InvalidReference' });
    assert.ok(event.message.includes(NAMES), event.message);
    assert.deepEqual(
      h.logs.filter((l) => /ValidatingAdmissionPolicy|denied request/.test(JSON.stringify(l))),
      [],
      'no write of hrto was refused',
    );
  });

  it('without the policy, hrto reports the same malformed input with Warning Events', async (t) => {
    const ns = await createNamespace('adm-absent');
    const badNames = 'app, Bad_Name';
    const badNamespace = 'Not A Namespace';
    const badWave = 'one';
    const badWindows = window({ ...W, cron: '0 8 * *' });
    // The same values, refused where the policy is bound.
    for (const [kind, annotations] of [
      ['ConfigMap', { [NAMES]: badNames }],
      ['ConfigMap', { [NAMES]: 'good', [NAMESPACE]: badNamespace }],
      ['HelmRelease', { [WAVE]: badWave }],
      ['HelmRelease', { [WINDOWS]: badWindows }],
    ] as const) {
      assert.equal((await ssa(object(kind, boundNs, `same-${probes++}`, annotations), 'All')).admitted, false, JSON.stringify(annotations));
    }

    // Not bound: every write is admitted.
    for (const [name, annotations] of [
      ['bad-wave', { [WAVE]: badWave }],
      ['bad-windows', { [WINDOWS]: badWindows }],
      ['good', {}],
    ] as const) {
      assert.deepEqual(await ssa(object('HelmRelease', ns, name, annotations)), { admitted: true });
    }
    assert.deepEqual(await ssa(object('ConfigMap', ns, 'values', { [NAMES]: 'bad-wave,bad-windows,good', [NAMESPACE]: ns })), { admitted: true });
    assert.deepEqual(await ssa(object('ConfigMap', ns, 'bad-names', { [NAMES]: badNames, [NAMESPACE]: ns })), { admitted: true });
    assert.deepEqual(await ssa(object('ConfigMap', ns, 'bad-namespace', { [NAMES]: 'good', [NAMESPACE]: badNamespace })), { admitted: true });
    for (const name of ['values', 'bad-names', 'bad-namespace']) {
      await core.patchNamespacedConfigMap({ namespace: ns, name, body: { metadata: { labels: { [WATCH_LABEL]: 'true' } } } }, mergePatch);
    }

    const h = await startHrto({ watchNamespaces: ns, debounce: '0s' });
    t.after(() => h.stop());
    for (const [name, key] of [
      ['bad-names', NAMES],
      ['bad-namespace', NAMESPACE],
    ] as const) {
      const event = await waitForEvent(ns, { kind: 'ConfigMap', name, reason: 'InvalidReference' });
      assert.equal(event.type, 'Warning');
      assert.ok(event.message.includes(key), `${name}: ${event.message}`);
    }
    // Rollout annotations are read when a change would reach the release.
    await waitForRecordedDigest(ns, 'values');
    await patchConfigMap(ns, 'values', { data: { 'values.yaml': 'a: 2\n' } });
    for (const [name, key] of [
      ['bad-wave', WAVE],
      ['bad-windows', WINDOWS],
    ] as const) {
      const event = await waitForEvent(ns, { kind: 'HelmRelease', name, reason: 'InvalidRollout' });
      assert.equal(event.type, 'Warning');
      assert.ok(event.message.includes(key), `${name}: ${event.message}`);
    }
  });

  it("the chart renders kustomize's policy; keyDomain renames the annotations it checks; off, or before 1.30, it renders none", async () => {
    const spec = (list: Obj[], kind: string): unknown => (list.find((o) => o.kind === kind) as unknown as { spec?: unknown } | undefined)?.spec;
    const kinds = ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];
    const chart = await helmTemplate(kc);
    for (const kind of kinds) assert.deepEqual(spec(chart, kind), spec([policy, binding], kind), kind);
    assert.deepEqual(
      chart.filter((o) => kinds.includes(o.kind)).map((o) => o.metadata.name),
      [POLICY, POLICY],
    );

    const nebius = await helmTemplate(kc, ['keyDomain=nebius.ai']);
    const renamed = (s: unknown): unknown => JSON.parse(JSON.stringify(s).replaceAll('uburro.github.com/', 'nebius.ai/'));
    assert.deepEqual(spec(nebius, kinds[0]!), renamed(spec([policy], kinds[0]!)));
    assert.ok(!JSON.stringify(spec(nebius, kinds[0]!)).includes('uburro.github.com'));

    const none = (list: Obj[]): boolean => !list.some((o) => kinds.includes(o.kind));
    assert.ok(none(await helmTemplate(kc, ['admissionPolicy.enabled=false'])), 'admissionPolicy.enabled=false');
    const template = async (version: string): Promise<Obj[]> => docs((await helm(['template', NAME, chartDir, '--kube-version', version])).stdout);
    assert.ok(none(await template('1.29.9')), 'Kubernetes 1.29');
    assert.ok(!none(await template('1.30.0')), 'Kubernetes 1.30');

    // The API server takes the renamed policy, and it judges nebius.ai/ annotations only.
    const label = `${RUN}-nebius`;
    const nebiusPolicy = forRun(nebius.find((o) => o.kind === kinds[0])!, '-nebius');
    await applyForRun([nebiusPolicy, narrowed(nebius.find((o) => o.kind === kinds[1])!, label, nebiusPolicy.metadata.name)]);
    const ns = await createNamespace('adm-nebius');
    await bind(ns, label);
    await eventually('the nebius.ai policy enforced', async () => !(await ssa(object('HelmRelease', ns, `probe-${probes++}`, { 'nebius.ai/wave': 'one' }), 'All')).admitted);
    const refused = await ssa(object('HelmRelease', ns, 'nebius', { 'nebius.ai/wave': 'one' }), 'All');
    assert.ok(!refused.admitted && refused.message.includes('denied request: nebius.ai/wave'), JSON.stringify(refused));
    assert.deepEqual(await ssa(object('HelmRelease', ns, 'uburro', { [WAVE]: 'one' }), 'All'), { admitted: true });
  });
});
