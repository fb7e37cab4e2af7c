import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RawSettings, resolveConfig } from '../../src/config.js';
import { probeReply, readinessChecks } from '../../src/http-server.js';
import { denial, explainDenial, explainDisabled, featureOff, judgeAccess, type Need, requiredAccess } from '../../src/kube/access.js';
import { type KubeWriter, withoutEvents } from '../../src/kube/client.js';

const HELM = 'helm.toolkit.fluxcd.io';

/** "verb resource[.group]@namespace" ('*' cluster-wide), compact enough to compare whole lists. */
const short = (needs: readonly Need[]): string[] => needs.map((n) => `${n.verb} ${n.group ? `${n.resource}.${n.group}` : n.resource}@${n.namespace || '*'}`);
const needsOf = (settings: RawSettings): Need[] => requiredAccess(resolveConfig(settings));
const need = (needs: readonly Need[], verb: string, resource: string, namespace = ''): Need => {
  const found = needs.find((n) => n.verb === verb && n.resource === resource && n.namespace === namespace);
  assert.ok(found, `${verb} ${resource}@${namespace || '*'} is needed`);
  return found;
};

describe('requiredAccess: each permission the flags need, and no other', () => {
  it('defaults: cluster-wide ConfigMaps, Secrets, HelmReleases and Events; a source is read one by one for autodiscovery only', () => {
    assert.deepEqual(short(needsOf({})), [
      'list configmaps@*',
      'watch configmaps@*',
      'get configmaps@*',
      'patch configmaps@*',
      'list secrets@*',
      'watch secrets@*',
      'get secrets@*',
      'patch secrets@*',
      `list helmreleases.${HELM}@*`,
      `watch helmreleases.${HELM}@*`,
      `patch helmreleases.${HELM}@*`,
      'create events@*',
      'patch events@*',
    ]);
  });

  it('scoped: the same in each watched namespace, nothing cluster-wide', () => {
    const needs = needsOf({ watchNamespaces: 'apps,web' });
    assert.equal(needs.length, 26);
    assert.deepEqual([...new Set(needs.map((n) => n.namespace))], ['apps', 'web']);
    assert.deepEqual(short(needs.filter((n) => n.namespace === 'web')), short(needsOf({ watchNamespaces: 'web' })));
  });

  it('--watch-secrets=false: nothing on Secrets', () => {
    const needs = needsOf({ watchNamespaces: 'apps', watchSecrets: 'false' });
    assert.deepEqual(needs.filter((n) => n.resource === 'secrets'), []);
    assert.deepEqual(short(needs.filter((n) => n.resource === 'configmaps')), ['list configmaps@apps', 'watch configmaps@apps', 'get configmaps@apps', 'patch configmaps@apps']);
  });

  it('--enable-hr-autodiscovery=false: no get of single sources', () => {
    assert.deepEqual(needsOf({ enableHrAutodiscovery: 'false' }).filter((n) => n.verb === 'get'), []);
  });

  it('--dry-run: no patch of sources or HelmReleases; Events (DryRunTrigger) and autodiscovery reads still', () => {
    const needs = needsOf({ dryRun: 'true', watchNamespaces: 'apps' });
    assert.deepEqual(short(needs.filter((n) => n.verb === 'patch')), ['patch events@apps']);
    need(needs, 'create', 'events', 'apps');
    need(needs, 'get', 'secrets', 'apps');
    need(needs, 'watch', 'helmreleases', 'apps');
  });

  it('leader election: the Lease in its namespace, get/create/update; none without it', () => {
    const on = needsOf({ watchNamespaces: 'apps', leaderElect: 'true', leaderElectionNamespace: 'hrto-system', leaderElectionId: 'my-lease' });
    assert.deepEqual(short(on.filter((n) => n.resource === 'leases')), [
      'get leases.coordination.k8s.io@hrto-system',
      'create leases.coordination.k8s.io@hrto-system',
      'update leases.coordination.k8s.io@hrto-system',
    ]);
    assert.match(need(on, 'update', 'leases', 'hrto-system').why, /my-lease/);
    assert.deepEqual(needsOf({ watchNamespaces: 'apps', leaderElect: 'false' }).filter((n) => n.resource === 'leases'), []);
  });

  it('says why, and only Events are optional', () => {
    const needs = needsOf({ watchNamespaces: 'apps' });
    assert.equal(need(needs, 'patch', 'helmreleases', 'apps').why, 'the trigger patch');
    assert.equal(need(needs, 'watch', 'secrets', 'apps').why, 'the informer of labeled Secrets');
    const optional = judgeAccess(needs, needs.map(() => false)).disabledFeatures;
    assert.deepEqual(optional.map((d) => [d.feature, short(d.denied)]), [['events', ['create events@apps', 'patch events@apps']]]);
  });
});

describe('judging the answers', () => {
  const needs = needsOf({ watchNamespaces: 'apps,web' });
  const allowedExcept = (...denied: Need[]): boolean[] => needs.map((n) => !denied.includes(n));

  it('everything allowed: nothing missing, nothing off', () => {
    assert.deepEqual(judgeAccess(needs, allowedExcept()), { missingRequired: [], disabledFeatures: [] });
  });

  it('a missing required permission is named by verb, resource with group, namespace and why', () => {
    const patch = need(needs, 'patch', 'helmreleases', 'apps');
    const verdict = judgeAccess(needs, allowedExcept(patch));
    assert.deepEqual(verdict.missingRequired, [patch]);
    assert.deepEqual(verdict.disabledFeatures, []);
    assert.equal(explainDenial(patch), `cannot patch helmreleases.${HELM} in namespace apps (needed for the trigger patch); grant it`);
  });

  it('a missing Secret permission points at --watch-secrets=false; a missing autodiscovery read at its flag', () => {
    const list = need(needs, 'list', 'secrets', 'web');
    assert.equal(explainDenial(list), 'cannot list secrets in namespace web (needed for the informer of labeled Secrets); grant it, or run with --watch-secrets=false');
    assert.match(explainDenial(need(needs, 'get', 'secrets', 'web')), /or run with --watch-secrets=false, or run with --enable-hr-autodiscovery=false$/);
    assert.match(explainDenial(need(needs, 'get', 'configmaps', 'web')), /; grant it, or run with --enable-hr-autodiscovery=false$/);
  });

  it('cluster-wide: "in any namespace (cluster-wide)", and a hint at --watch-namespaces for namespaced grants', () => {
    const wide = needsOf({});
    assert.equal(
      explainDenial(need(wide, 'watch', 'configmaps')),
      'cannot watch configmaps in any namespace (cluster-wide) (needed for the informer of labeled ConfigMaps); grant it, or if it is granted only in some namespaces (a Role), list them with --watch-namespaces',
    );
  });

  it('a Lease permission points at --leader-election-namespace, not at --watch-namespaces', () => {
    const lease = need(needsOf({ leaderElect: 'true', leaderElectionNamespace: 'hrto-system' }), 'create', 'leases', 'hrto-system');
    assert.equal(
      explainDenial(lease),
      'cannot create leases.coordination.k8s.io in namespace hrto-system (needed for leader election on the Lease helmrelease-trigger-operator); grant it, or point --leader-election-namespace at a namespace where hrto may',
    );
  });

  it('missing Events only turn Events off, where they are missing', () => {
    const create = need(needs, 'create', 'events', 'web');
    const verdict = judgeAccess(needs, allowedExcept(create));
    assert.deepEqual(verdict.missingRequired, []);
    assert.deepEqual(verdict.disabledFeatures, [{ feature: 'events', denied: [create] }]);
    assert.equal(denial(create), 'cannot create events in namespace web');
    assert.equal(explainDisabled(create), 'cannot create events in namespace web (needed for recording Events); hrto runs without events in namespace web');
    const off = featureOff(verdict, 'events');
    assert.equal(off('web'), true);
    assert.equal(off('apps'), false);
    assert.equal(featureOff(verdict, 'secrets')('web'), false);
  });

  it('Events that may be created but not patched are off too (every repeat would be refused)', () => {
    const verdict = judgeAccess(needs, allowedExcept(need(needs, 'patch', 'events', 'apps')));
    assert.equal(featureOff(verdict, 'events')('apps'), true);
  });

  it('Events denied cluster-wide are off in every namespace', () => {
    const wide = needsOf({});
    const verdict = judgeAccess(wide, wide.map((n) => n.resource !== 'events'));
    assert.equal(featureOff(verdict, 'events')('anything'), true);
    assert.match(explainDisabled(need(wide, 'create', 'events')), /list them with --watch-namespaces; hrto runs without events in every namespace$/);
  });

  it('required and optional together: both reported, each in its place', () => {
    const patch = need(needs, 'patch', 'configmaps', 'apps');
    const create = need(needs, 'create', 'events', 'apps');
    const verdict = judgeAccess(needs, allowedExcept(patch, create));
    assert.deepEqual(verdict.missingRequired, [patch]);
    assert.deepEqual(verdict.disabledFeatures, [{ feature: 'events', denied: [create] }]);
  });

  it('refuses answers that do not match the questions', () => {
    assert.throws(() => judgeAccess(needs, [true]), /1 answers for 26 permissions/);
  });
});

describe('withoutEvents', () => {
  it('drops Kubernetes Events in the namespaces where they are off, passes everything else', async () => {
    const calls: string[] = [];
    const record = (what: string) => (...args: unknown[]): Promise<void> => {
      calls.push(`${what} ${String(args[0])}`);
      return Promise.resolve();
    };
    const base: KubeWriter = {
      patchRelease: record('patchRelease'),
      patchSource: record('patchSource'),
      getSourceMetadata: (kind) => {
        calls.push(`get ${kind}`);
        return Promise.resolve(undefined);
      },
      createEvent: record('createEvent'),
      patchEvent: record('patchEvent'),
    };
    const writer = withoutEvents(base, (ns) => ns === 'off');
    const event = { metadata: { name: 'e' }, involvedObject: {} };
    await writer.createEvent('off', event);
    await writer.patchEvent('off', 'e', {});
    await writer.createEvent('on', event);
    await writer.patchEvent('on', 'e', {});
    await writer.patchRelease('off', 'app', { metadata: { annotations: {} } });
    await writer.patchSource('ConfigMap', 'off', 'values', { metadata: {} });
    await writer.getSourceMetadata('Secret', 'off', 'creds');
    assert.deepEqual(calls, ['createEvent on', 'patchEvent on', 'patchRelease off', 'patchSource ConfigMap', 'get Secret']);
  });
});

describe('/readyz body', () => {
  const disabled = [{ feature: 'events', reasons: ['cannot create events in namespace x'] }];

  it('plain and ready: "ok"', () => {
    assert.deepEqual(probeReply(readinessChecks(true, disabled), false), { status: 200, body: 'ok\n' });
  });

  it('?verbose: every check in the API server style; a disabled feature passes and says why', () => {
    assert.deepEqual(probeReply(readinessChecks(true, disabled), true), {
      status: 200,
      body: '[+]informers-synced ok\n[+]events disabled: cannot create events in namespace x\nreadyz check passed\n',
    });
  });

  it('not synced: 503, and the body names the failing check, verbose or not', () => {
    const expected = { status: 503, body: '[-]informers-synced failed: caches not synced\nreadyz check failed\n' };
    assert.deepEqual(probeReply(readinessChecks(false, []), false), expected);
    assert.deepEqual(probeReply(readinessChecks(false, []), true), expected);
  });

  it('several reasons for one feature share its line', () => {
    const checks = readinessChecks(true, [{ feature: 'events', reasons: ['cannot create events in namespace a', 'cannot patch events in namespace a'] }]);
    assert.match(probeReply(checks, true).body, /^\[\+\]events disabled: cannot create events in namespace a; cannot patch events in namespace a$/m);
  });
});
