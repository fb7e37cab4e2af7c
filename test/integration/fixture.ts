// Per-test setup: a namespace (or several), a trigger log and an hrto scoped to them.
import type { TestContext } from 'node:test';
import type { RawSettings } from '../../src/config.js';
import type { KubeWriter } from '../../src/kube/client.js';
import { type Hrto, metricValue, startHrto, TriggerLog } from './hrto.js';
import { createNamespace, eventually, getHelmRelease } from './support.js';

export interface Fixture {
  ns: string;
  triggers: TriggerLog;
  hrto: Hrto;
}

export async function fixture(
  t: TestContext,
  prefix: string,
  settings: RawSettings = {},
  options: {
    extraNamespaces?: string[];
    wrapWriter?: (w: KubeWriter) => KubeWriter;
    /** Objects to create before hrto starts, so its first list already holds them as they are. */
    prepare?: (ns: string) => Promise<void>;
  } = {},
): Promise<Fixture> {
  const ns = await createNamespace(prefix);
  const triggers = await TriggerLog.start(ns);
  await options.prepare?.(ns);
  const watchNamespaces = [ns, ...(options.extraNamespaces ?? [])].join(',');
  const hrto = await startHrto({ watchNamespaces, ...settings }, options);
  t.after(async () => {
    if (process.env.HRTO_TEST_DEBUG) for (const line of hrto.logs) process.stderr.write(`[${t.name}] ${JSON.stringify(line)}\n`);
    await triggers.stop();
    await hrto.stop();
  });
  return { ns, triggers, hrto };
}

/** Waits until hrto has reconciled at least once more than `before` and its queue is empty. */
export async function reconciledSince(hrto: Hrto, before: number): Promise<void> {
  await eventually('hrto to reconcile', async () => {
    const done = await metricValue(hrto.metrics, 'hrto_reconciles_total', { queue: 'source' });
    return done > before && (await metricValue(hrto.metrics, 'hrto_queue_depth')) === 0;
  });
}

export async function reconciles(hrto: Hrto): Promise<number> {
  return metricValue(hrto.metrics, 'hrto_reconciles_total', { queue: 'source' });
}

export async function requestedAt(ns: string, name: string): Promise<string | undefined> {
  return (await getHelmRelease(ns, name)).metadata.annotations?.['reconcile.fluxcd.io/requestedAt'];
}
