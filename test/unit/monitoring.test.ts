// The shipped dashboard and alert rules query only series hrto really exports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { createMetrics } from '../../src/metrics.js';
import { projectRoot } from '../harness/binaries.js';

const dir = path.join(projectRoot, 'config', 'monitoring');

async function exported(): Promise<Set<string>> {
  const metrics = createMetrics({ processMetrics: true });
  return new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
}

/** Metric names in a PromQL expression (histogram series mapped to their family). */
function metricNames(expr: string): string[] {
  const names = expr.match(/\b(hrto_[a-z_]+|process_[a-z_]+|nodejs_[a-z_]+)\b/g) ?? [];
  return names.map((n) => n.replace(/_(bucket|count|sum)$/, ''));
}

describe('monitoring', () => {
  it('every alert rule has a severity and queries exported series', async () => {
    const names = await exported();
    const doc = parse(readFileSync(path.join(dir, 'prometheus-rules.yaml'), 'utf8')) as {
      kind: string;
      spec: { groups: { rules: { alert: string; expr: string; labels: { severity: string } }[] }[] };
    };
    assert.equal(doc.kind, 'PrometheusRule');
    const rules = doc.spec.groups.flatMap((g) => g.rules);
    for (const alert of ['HrtoTriggerErrors', 'HrtoNoLeader', 'HrtoCacheNotSynced']) assert.ok(rules.some((r) => r.alert === alert), alert);
    for (const rule of rules) {
      assert.ok(['critical', 'warning', 'info'].includes(rule.labels.severity), rule.alert);
      const used = metricNames(rule.expr);
      assert.ok(used.length > 0, rule.alert);
      for (const name of used) assert.ok(names.has(name), `${rule.alert}: ${name} is not exported`);
    }
  });
  it('every dashboard panel queries exported series', async () => {
    const names = await exported();
    const dashboard = JSON.parse(readFileSync(path.join(dir, 'grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    assert.ok(dashboard.panels.length >= 8);
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        for (const name of metricNames(expr)) assert.ok(names.has(name), `${panel.title}: ${name} is not exported`);
      }
    }
  });
});
