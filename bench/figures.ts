// Issue 12's figures: each a value, the floor or baseline it is compared with (measured in the same
// run where one exists, else the original Go operator's figure from the issue), the ratio, the goal
// and whether it is met. Scenarios return them; run.ts prints them all in one summary table and
// stores them in the JSON result. With the Go original as a peer (HRTO_BENCH_GO_PEER), the compared
// scenarios also return what they measured for both (Versus), printed in a table of their own.

/** MiB/h: a trend (fleet's least-squares slope of RSS). */
export type Unit = 'MiB' | 'MiB/h' | 'ms' | 's' | '%' | 'count';

export interface Figure {
  /** Which scenario measured it. */
  scenario: string;
  figure: string;
  value: number;
  unit: Unit;
  baseline?: { value: number; what: string };
  /** value / baseline.value */
  ratio?: number;
  goal?: { text: string; met: boolean; ratioToGoal?: number };
  /** The original Go operator's figure, from issue 12 (measured there, not in this run). */
  original?: string;
}

export type Goal =
  /** value <= max */
  | { max: number }
  /** value / baseline <= maxRatio */
  | { maxRatio: number }
  /** value - baseline <= maxOver */
  | { maxOver: number };

export function fmt(value: number | undefined, unit: Unit): string {
  if (value === undefined || Number.isNaN(value)) return 'n/a';
  switch (unit) {
    case 'MiB':
      return `${value.toFixed(1)} MiB`;
    case 'MiB/h':
      return `${value.toFixed(1)} MiB/h`;
    case 'ms':
      return `${value.toFixed(2)} ms`;
    case 's':
      return `${value.toFixed(2)} s`;
    case '%':
      return `${value.toFixed(2)} %`;
    case 'count':
      return String(value);
  }
}

const round = (n: number, digits = 3) => Number(n.toFixed(digits));

export function figure(
  scenario: string,
  label: string,
  value: number,
  unit: Unit,
  opts: { baseline?: { value: number; what: string }; goal?: Goal; original?: string } = {},
): Figure {
  const out: Figure = { scenario, figure: label, value: round(value), unit };
  const base = opts.baseline;
  if (base) {
    out.baseline = { value: round(base.value), what: base.what };
    if (base.value !== 0) out.ratio = round(value / base.value);
  }
  const goal = opts.goal;
  if (goal && 'max' in goal) {
    out.goal = { text: `<= ${fmt(goal.max, unit)}`, met: value <= goal.max };
    if (goal.max !== 0) out.goal.ratioToGoal = round(value / goal.max);
  } else if (goal && 'maxRatio' in goal && base) {
    out.goal = { text: `<= ${goal.maxRatio}x ${base.what}`, met: value / base.value <= goal.maxRatio, ratioToGoal: round(value / base.value / goal.maxRatio) };
  } else if (goal && 'maxOver' in goal && base) {
    out.goal = { text: `<= ${base.what} + ${fmt(goal.maxOver, unit)}`, met: value - base.value <= goal.maxOver, ratioToGoal: round(value / (base.value + goal.maxOver)) };
  }
  if (opts.original) out.original = opts.original;
  return out;
}

export function figureRows(figures: readonly Figure[]): Record<string, string>[] {
  return figures.map((f) => ({
    figure: f.figure,
    value: fmt(f.value, f.unit),
    'baseline/floor': f.baseline ? `${fmt(f.baseline.value, f.unit)} (${f.baseline.what})` : '-',
    ratio: f.ratio === undefined ? '-' : `${f.ratio.toFixed(2)}x`,
    goal: f.goal?.text ?? '-',
    'vs goal': f.goal?.ratioToGoal === undefined ? '-' : `${f.goal.ratioToGoal.toFixed(2)}x`,
    'met?': f.goal ? (f.goal.met ? 'yes' : 'NO') : '-',
    'original (Go, issue 12)': f.original ?? '-',
  }));
}

/** A figure measured for hrto and for the original Go operator in the same run (HRTO_BENCH_GO_PEER). */
export interface Versus {
  scenario: string;
  figure: string;
  unit: Unit;
  original: number;
  hrto: number;
  /** hrto / original */
  ratio?: number;
}

export function versus(scenario: string, label: string, unit: Unit, original: number, hrto: number): Versus {
  const out: Versus = { scenario, figure: label, unit, original: round(original), hrto: round(hrto) };
  if (original !== 0 && !Number.isNaN(original) && !Number.isNaN(hrto)) out.ratio = round(hrto / original);
  return out;
}

export function versusRows(rows: readonly Versus[]): Record<string, string>[] {
  return rows.map((v) => ({
    figure: v.figure,
    'original (Go)': fmt(v.original, v.unit),
    hrto: fmt(v.hrto, v.unit),
    'hrto / original': v.ratio === undefined ? '-' : `${v.ratio.toFixed(2)}x`,
  }));
}
