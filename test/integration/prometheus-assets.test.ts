/**
 * The shipped monitoring assets (packaging/prometheus, packaging/grafana;
 * docs/metrics.md): the alerting rules pass `promtool check rules` and their
 * unit tests (`promtool test rules`), and — on real scrapes of the exporter
 * in a test namespace, after real traffic to a destination with a socket and
 * to one without — exactly the alerts for the socketless destination fire.
 * Every expression of the Grafana dashboard parses (promtool) and names only
 * metrics and labels that a real scrape has, and its "no socket" stat counts
 * that destination.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT } from '../helpers/env.js';
import { Exporter } from '../helpers/exporter.js';
import { parsePromText, type PromFamily } from '../helpers/promtext.js';
import { serve, setup, teardown, type Ctx } from '../helpers/suite.js';

const RULES = path.join(ROOT, 'packaging', 'prometheus', 'manifold.rules.yml');
const RULES_TEST = path.join(ROOT, 'packaging', 'prometheus', 'manifold.rules.test.yml');
const DASHBOARD = path.join(ROOT, 'packaging', 'grafana', 'manifold.json');
const INSTANCE = 'test:9733';

let ctx: Ctx;
let exp: Exporter;
let dir: string;
let before: Map<string, PromFamily>;
let after: Map<string, PromFamily>;

function promtool(...args: string[]): { code: number; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  assert.not.ok(r.error, `promtool: ${r.error?.message} (the prometheus package provides it: make deps)`);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

async function scrape(): Promise<Map<string, PromFamily>> {
  const r = await exp.get();
  assert.is(r.status, 200, r.body);
  return parsePromText(r.body);
}

test.before(async () => {
  ctx = await setup('promas');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mf-promas-'));
  await serve(ctx, 'web', 'tcp', '127.0.0.1', 9501);
  ctx.env.ok(['bind', 'web', 'tcp', '192.0.2.0/24', '80']);
  ctx.env.ok(['bind', 'nosock', 'tcp', '192.0.2.77', '81']);
  exp = await Exporter.start(ctx.env);
  const traffic = async (web: number, nosock: number): Promise<void> => {
    for (let i = 0; i < web; i++) assert.is(await ctx.agent.who('tcp', `192.0.2.${i + 1}`, 80), 'web');
    for (let i = 0; i < nosock; i++) assert.is(await ctx.agent.who('tcp', '192.0.2.77', 81), '!ECONNREFUSED');
  };
  await traffic(3, 2);
  before = await scrape();
  await traffic(2, 3);
  after = await scrape();
});
test.after(async () => {
  if (exp) await exp.stop('SIGKILL').catch(() => undefined);
  teardown(ctx);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('promtool check rules and promtool test rules pass', () => {
  const check = promtool('check', 'rules', RULES);
  assert.is(check.code, 0, check.out);
  assert.match(check.out, 'SUCCESS: 7 rules found');
  const unit = promtool('test', 'rules', RULES_TEST);
  assert.is(unit.code, 0, unit.out);
  assert.match(unit.out, 'SUCCESS');
});

/** A series selector: name{labels}, label values quoted as PromQL strings. */
function selector(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
}

/** Input series for promtool from the two real scrapes: gauges as scraped last, counters growing per minute as observed. */
function inputSeries(): { series: string; values: string }[] {
  const out: { series: string; values: string }[] = [{ series: selector('up', { instance: INSTANCE, job: 'manifold' }), values: '1x30' }];
  for (const fam of after.values()) {
    for (const s of fam.samples) {
      const labels = { ...s.labels, instance: INSTANCE, job: 'manifold' };
      const v0 = before.get(fam.name)?.samples.find((x) => JSON.stringify(x.labels) === JSON.stringify(s.labels))?.value ?? 0;
      const values = fam.type === 'counter' ? `${v0}+${Math.max(0, s.value - v0)}x30` : `${s.value}x30`;
      out.push({ series: selector(s.name, labels), values });
    }
  }
  return out;
}

test('on real scrapes, the socketless destination (and only it) raises its alerts', () => {
  const nosock = { instance: INSTANCE, job: 'manifold', label: 'nosock', domain: 'ipv4', protocol: 'tcp' };
  const misses = after.get('manifold_misses_total')?.samples.find((s) => s.labels.label === 'nosock');
  assert.is(misses?.value, 5, 'five refused connections counted');
  const alert = (name: string): { labels: string; value: number } => ({
    labels: selector('ALERTS', { alertname: name, alertstate: 'firing', severity: 'warning', ...nosock }),
    value: 1,
  });
  const doc = {
    rule_files: [RULES],
    evaluation_interval: '1m',
    tests: [{
      interval: '1m',
      input_series: inputSeries(),
      promql_expr_test: [
        { expr: 'ALERTS{alertstate="firing"}', eval_time: '4m', exp_samples: [] },
        { expr: 'ALERTS{alertstate="firing"}', eval_time: '15m', exp_samples: [alert('ManifoldDestinationWithoutSocket'), alert('ManifoldMisses')] },
      ],
    }],
  };
  const file = path.join(dir, 'real.test.yml');
  fs.writeFileSync(file, JSON.stringify(doc, null, 1));
  const r = promtool('test', 'rules', file);
  assert.is(r.code, 0, r.out);
});

interface Target {
  expr: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Target[];
  gridPos: { x: number; y: number; w: number; h: number };
}

/** The dashboard's PromQL with Grafana's variables given values. */
function concrete(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$job', 'manifold')
    .replaceAll('$instance', '.*')
    .replaceAll('$label', '.*');
}

function expressions(): { where: string; expr: string }[] {
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: { name: string; query?: { query: string } | string }[] } };
  const out: { where: string; expr: string }[] = [];
  for (const p of d.panels) for (const t of p.targets ?? []) out.push({ where: `panel ${p.id} "${p.title}"`, expr: t.expr });
  for (const v of d.templating.list) {
    const q = typeof v.query === 'string' ? null : v.query?.query;
    const m = q ? /^label_values\((.+), (\w+)\)$/.exec(q) : null;
    if (q) {
      assert.ok(m, `variable ${v.name}: ${q}`);
      out.push({ where: `variable ${v.name}`, expr: m![1]! });
    }
  }
  return out;
}

test('the Grafana dashboard: well-formed, every expression parses and names metrics and labels of a real scrape', () => {
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; schemaVersion: number; panels: Panel[] };
  assert.is(d.uid, 'manifold');
  assert.ok(d.schemaVersion >= 36);
  const ids = d.panels.map((p) => p.id);
  assert.is(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of d.panels) {
    assert.ok(p.title && p.type && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id}`);
    if (p.type !== 'row') assert.ok((p.targets ?? []).length > 0, `panel ${p.id} "${p.title}" has a query`);
  }

  const scraped = new Set([...after.keys(), 'up']);
  const labels = new Set(['instance', 'job', '__name__']);
  for (const f of after.values()) for (const s of f.samples) for (const l of Object.keys(s.labels)) labels.add(l);
  const used = new Set<string>();
  const exprs = expressions();
  assert.ok(exprs.length >= 15, `${exprs.length} expressions`);
  for (const { where, expr } of exprs) {
    const metrics = [...expr.matchAll(/\b(manifold_[a-z_]+|up)\b(?!\s*\()/g)].map((m) => m[1]!);
    assert.ok(metrics.length > 0, `${where}: names a metric: ${expr}`);
    for (const m of metrics) {
      assert.ok(scraped.has(m), `${where}: ${m} is not in a real scrape`);
      used.add(m);
    }
    const names = [
      ...[...expr.matchAll(/\b(?:by|on|without|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((x) => x.trim()).filter(Boolean)),
      ...[...expr.matchAll(/[{,]\s*([a-zA-Z_]\w*)\s*(?:=~|!=|!~|=)/g)].map((m) => m[1]!),
    ];
    for (const l of names) assert.ok(labels.has(l), `${where}: label ${l} is on no scraped metric: ${expr}`);
  }
  // Every metric the exporter has appears on the dashboard.
  assert.equal([...after.keys()].filter((m) => !used.has(m)), [], 'metrics not on the dashboard');

  // PromQL syntax: each expression as a recording rule, checked by promtool.
  const rules = exprs.map((e, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(concrete(e.expr))}`).join('\n');
  const file = path.join(dir, 'dashboard.rules.yml');
  fs.writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
  const r = promtool('check', 'rules', file);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, `SUCCESS: ${exprs.length} rules found`);
});

test('the dashboard\'s "no socket" stat, on the real scrapes: one destination', () => {
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const stat = d.panels.find((p) => p.title === 'Destinations with bindings but no socket');
  const expr = concrete(stat?.targets?.[0]?.expr ?? '');
  const doc = {
    evaluation_interval: '1m',
    tests: [{ interval: '1m', input_series: inputSeries(), promql_expr_test: [{ expr, eval_time: '10m', exp_samples: [{ labels: '{}', value: 1 }] }] }],
  };
  const file = path.join(dir, 'stat.test.yml');
  fs.writeFileSync(file, JSON.stringify(doc));
  const r = promtool('test', 'rules', file);
  assert.is(r.code, 0, `${expr}: ${r.out}`);
});

test.run();
