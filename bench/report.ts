// Renders a benchmark run: the table on stdout, the notes, a final "BENCH_JSON {...}" line, and
// (with a file to write) the generated section of BENCHMARKS.md (report-doc.ts).
import { BUSY_POLL_US } from './busy-poll';
import { CONF } from './options';
import { Results } from './results';
import { buildNotes } from './report-doc';
import { PRE } from './router';

/** The RTT figures, per path prefix ('' veth, rtr_ router): one datagram in flight, then paced. */
const RTT_KINDS = ['rtt', 'rtt_paced'] as const;
const QUANTILES = [['p50', 'p50', 0.1], ['p99', 'p99', 0.5], ['p999', 'p99.9', undefined]] as const;

export interface Row { metric: string; base: string; rs: string; rel: string; target: string; result: string; keys: string[] }

/** Figures derived from the measured ones (ratios, differences). */
export function derive(r: Results): Record<string, number> {
  const m = r.m;
  const d: Record<string, number> = {};
  const ratio = (a: string, b: string) => (r.has(a) && r.has(b) && m[b] > 0 ? m[a] / m[b] : undefined);
  const set = (k: string, v: number | undefined) => { if (v !== undefined) d[k] = v; };
  set('rate_ratio', ratio('tunnel_rate', 'direct_rate'));
  set('rate_4k_ratio', ratio('tunnel_rate_4k', 'direct_rate_4k'));
  set(`${PRE}rate_ratio`, ratio(`${PRE}tunnel_rate`, `${PRE}direct_rate`));
  for (const pre of ['', PRE]) {
    for (const dir of ['up', 'down']) set(`${pre}kcp_${dir}_ratio`, ratio(`${pre}kcp_tunnel_${dir}_mbps`, `${pre}kcp_direct_${dir}_mbps`));
    for (const kind of RTT_KINDS) {
      for (const [q] of QUANTILES) {
        const [a, b] = [`${pre}${kind}_direct_${q}_ms`, `${pre}${kind}_tunnel_${q}_ms`];
        if (r.has(a) && r.has(b)) d[`${pre}${kind}_added_${q}_ms`] = m[b] - m[a];
      }
    }
  }
  const drop = (k: string, x: number | undefined) => set(k, x === undefined ? undefined : (1 - x) * 100);
  drop('flows_drop_pct', ratio('tunnel_rate_10k', 'tunnel_rate'));
  drop('ports_drop_pct', ratio('tunnel_rate_100ports', 'tunnel_rate_1port'));
  drop('direct_flows_drop_pct', ratio('direct_rate_10k', 'direct_rate'));
  return d;
}

export const int = (x: number) => Math.round(x).toLocaleString('en-US');
export const fix = (x: number, n: number) => x.toFixed(n);
export const signed = (x: number, n: number) => (x >= 0 ? '+' : '') + fix(x, n);

export function buildRows(r: Results, d: Record<string, number>): Row[] {
  const { m, na } = r;
  const smoke = r.info.mode === 'smoke';
  const val = (k: string, fmt: (x: number) => string) => (r.has(k) ? fmt(m[k]) : 'n/a');
  const dv = (x: number | undefined, fmt: (x: number) => string) => (x === undefined ? 'n/a' : fmt(x));
  const verdict = (x: number | undefined, ok: (x: number) => boolean) => (x === undefined ? 'n/a' : ok(x) ? 'PASS' : 'FAIL');
  const ms = (x: number) => fix(x, 3);
  const mib = (x: number) => fix(x, 1);
  const f0 = (x: number) => fix(x, 0);
  const rows: Row[] = [];
  const row = (metric: string, base: string, rs: string, rel: string, target: string, result: string, keys: string[]) => {
    // the last key is rsock's own figure; rows without it or a reason are not part of the smoke subset
    const own = keys[keys.length - 1];
    if (smoke && !r.has(own) && !na[own]) return;
    rows.push({ metric, base, rs, rel, target, result, keys });
  };
  row('Datagrams/s, 1200 B, < 1 % loss (baseline: direct UDP)', val('direct_rate', int), val('tunnel_rate', int),
    dv(d.rate_ratio, (x) => `${fix(x * 100, 0)} %`), '≥ 60 %', verdict(d.rate_ratio, (x) => x >= 0.6), ['direct_rate', 'tunnel_rate']);
  row('Datagrams/s, 4,000 B (fragmented), < 1 % loss (baseline: direct UDP)', val('direct_rate_4k', int), val('tunnel_rate_4k', int),
    dv(d.rate_4k_ratio, (x) => `${fix(x * 100, 0)} %`), '—', '—', ['direct_rate_4k', 'tunnel_rate_4k']);
  const kcpRows = (pre: string, label: string) => {
    for (const [dir, what] of [['up', 'client→server'], ['down', 'server→client (-R)']] as const) {
      const [a, b, q] = [`${pre}kcp_direct_${dir}_mbps`, `${pre}kcp_tunnel_${dir}_mbps`, d[`${pre}kcp_${dir}_ratio`]];
      row(`${label}kcptun goodput ${what}, Mbit/s${dir === 'up' ? ' (baseline: kcptun on UDP)' : ''}`, val(a, f0), val(b, f0),
        dv(q, (x) => fix(x, 2)), '≥ 0.9', verdict(q, (x) => x >= 0.9), [a, b]);
    }
  };
  kcpRows('', '');
  // via: whose figures (tunnel: rsock as run by default; busypoll: rsock --busy-poll; udp2raw: a comparison, not judged).
  const rttRows = (pre: string, label: string, via = 'tunnel') => {
    for (const kind of RTT_KINDS) {
      const how = kind === 'rtt' ? 'one in flight' : `paced ${int(CONF.pacedRate)}/s`;
      for (const [q, name, lim] of QUANTILES) {
        const [a, b] = [`${pre}${kind}_direct_${q}_ms`, `${pre}${kind}_${via}_${q}_ms`];
        const x = r.has(a) && r.has(b) ? m[b] - m[a] : undefined;
        if (via === 'udp2raw') {
          if (r.has(b) || na[b]) rows.push({ metric: `${label}RTT ${name}, ${how}, ms`, base: val(a, ms), rs: val(b, ms),
            rel: dv(x, (v) => `${signed(v, 3)} ms`), target: '—', result: '—', keys: [a, b] });
          continue;
        }
        if (via !== 'tunnel' && !r.has(b) && !na[b]) continue;
        row(`${label}UDP ping-pong RTT ${name}, ${how}, ms${kind === 'rtt' && q === 'p50' ? ' (baseline: direct)' : ''}`, val(a, ms), val(b, ms),
          dv(x, (v) => `${signed(v, 3)} ms`), lim === undefined ? '—' : `≤ +${lim} ms`, lim === undefined ? '—' : verdict(x, (v) => v <= lim), [a, b]);
      }
    }
  };
  const cpuRow = (pre: string, label: string, key = `${pre}cpu_us_per_dgram`) => row(`${label}CPU per datagram, client+server, µs (20k/s, 5 s)`, '—',
    val(key, (x) => fix(x, 2)), '—', '≤ 10 µs', verdict(m[key], (x) => x <= 10), [key]);
  // The same rows for rsock --busy-poll (busy-poll.ts), judged against the same targets.
  const busyRows = (pre: string, where: string) => {
    const label = `${where}rsock --busy-poll=${BUSY_POLL_US}: `;
    rttRows(pre, label, 'busypoll');
    const key = `${pre}busypoll_cpu_us_per_dgram`;
    if (r.has(key) || na[key]) cpuRow(pre, label, key);
  };
  rttRows('', '');
  cpuRow('', '');
  busyRows('', '');
  const pair = (a: string, b: string) => (r.has(a) || r.has(b) ? `${val(a, mib)} / ${val(b, mib)}` : 'n/a');
  const both = (a: string, b: string, lim: number) => (r.has(a) && r.has(b) ? (m[a] <= lim && m[b] <= lim ? 'PASS' : 'FAIL') : 'n/a');
  row('RSS idle, client / server, MiB', '—', pair('rss_idle_client_mb', 'rss_idle_server_mb'), '—', '≤ 60 each',
    both('rss_idle_client_mb', 'rss_idle_server_mb', 60), ['rss_idle_client_mb', 'rss_idle_server_mb']);
  row('RSS with 10k live flows, client / server, MiB', '—', pair('rss_10k_client_mb', 'rss_10k_server_mb'), '—', '≤ 120 each',
    both('rss_10k_client_mb', 'rss_10k_server_mb', 120), ['rss_10k_client_mb', 'rss_10k_server_mb']);
  row('Datagrams/s with 10k flows (baseline: rsock, 1 flow)', val('tunnel_rate', int), val('tunnel_rate_10k', int),
    dv(d.flows_drop_pct, (x) => `${signed(-x, 1)} %`), '> -10 %', verdict(d.flows_drop_pct, (x) => x < 10), ['tunnel_rate', 'tunnel_rate_10k']);
  row('Datagrams/s with 100 ports (baseline: rsock, 1 port)', val('tunnel_rate_1port', int), val('tunnel_rate_100ports', int),
    dv(d.ports_drop_pct, (x) => `${signed(-x, 1)} %`), '> -10 %', verdict(d.ports_drop_pct, (x) => x < 10),
    ['tunnel_rate_1port', 'tunnel_rate_100ports']);
  // Per wire mode; the targets are issue 7's: 24 B under tls, 16 compact, at most 16 more with aead.
  for (const [key, what, lim] of [['header_bytes', '--obfs=tls (default)', 24], ['header_bytes_none', '--obfs=none', 16],
    ['header_bytes_tls_aead', '--obfs=tls --crypt=aead', 40], ['header_bytes_none_aead', '--obfs=none --crypt=aead', 32]] as const) {
    row(`Header bytes per datagram beyond IP+TCP headers, ${what}`, '0 (UDP: 8 B header)', val(key, f0),
      r.has(key) && r.info[`${key}.tcp_options_bytes`] ? `+ ${r.info[`${key}.tcp_options_bytes`]} B TCP options` : '—',
      `≤ ${lim} B`, verdict(m[key], (x) => x <= lim), [key]);
  }
  // The router path (router.ts): the same user-felt figures through the strict conntrack router.
  const rl = 'Router path: ';
  row(`${rl}datagrams/s, 1200 B, < 1 % loss (baseline: direct UDP via the router)`, val(`${PRE}direct_rate`, int), val(`${PRE}tunnel_rate`, int),
    dv(d[`${PRE}rate_ratio`], (x) => `${fix(x * 100, 0)} %`), '≥ 60 %', verdict(d[`${PRE}rate_ratio`], (x) => x >= 0.6),
    [`${PRE}direct_rate`, `${PRE}tunnel_rate`]);
  kcpRows(PRE, rl);
  rttRows(PRE, rl);
  cpuRow(PRE, rl);
  busyRows(PRE, rl);
  // udp2raw (udp2raw.ts), a comparison on both paths when RSOCK_BENCH_UDP2RAW is set: no targets.
  for (const [pre, where] of [['', ''], [PRE, 'Router path, ']]) {
    const [base, k, c] = [`${pre}direct_rate`, `${pre}udp2raw_rate`, `${pre}udp2raw_cpu_us_per_dgram`];
    const ul = `${where}udp2raw (comparison, in the rsock column): `;
    if (r.has(k) || na[k]) {
      rows.push({ metric: `${ul}datagrams/s, 1200 B, < 1 % loss`, base: val(base, int), rs: val(k, int),
        rel: r.has(k) && r.has(base) ? `${fix((m[k] / m[base]) * 100, 0)} %` : 'n/a', target: '—', result: '—', keys: [base, k] });
    }
    rttRows(pre, ul, 'udp2raw');
    if (r.has(c) || na[c]) rows.push({ metric: `${ul}CPU per datagram, client+server, µs (20k/s, 5 s)`, base: '—', rs: val(c, (x) => fix(x, 2)), rel: '—', target: '—', result: '—', keys: [c] });
  }
  return rows;
}

export function table(rows: Row[]): string {
  const head = ['Metric', 'Baseline', 'rsock', 'rsock vs baseline', 'Target', 'Result'];
  const cells = rows.map((r) => [r.metric, r.base, r.rs, r.rel, r.target, r.result]);
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(width[i])).join(' | ')} |`;
  return [line(head), `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

export interface Report { rows: Row[]; table: string; notes: string[]; derived: Record<string, number>; json: string }

/** Builds the report and prints the table, the notes and the BENCH_JSON line (last). */
export function printReport(r: Results, beforeJson?: (rep: Report) => void): Report {
  const derived = derive(r);
  const rows = buildRows(r, derived);
  const notes = buildNotes(r, rows, derived);
  const t = table(rows);
  const i = r.info;
  const header = [
    `Mode: ${i.mode || '?'}   Date: ${i.date || '?'}   rsock: ${i.rsock_commit || '?'}`,
    `Kernel: ${i.kernel || '?'}   CPU: ${i.cpu || '?'}`,
    `Command: sudo ${i.command || 'npm run bench'}`,
  ].join('\n');
  process.stdout.write(`\n${header}\n\n${t}\n`);
  if (notes.length) process.stdout.write(`\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
  const metrics = Object.fromEntries(Object.entries({ ...r.m, ...derived }).filter(([, v]) => Number.isFinite(v))
    .map(([k, v]) => [k, Math.round(v * 1e4) / 1e4]));
  const json = JSON.stringify({
    mode: i.mode, date: i.date, kernel: i.kernel, cpu: i.cpu, command: i.command, rsock: i.rsock_commit,
    metrics, na: r.na, pass: Object.fromEntries(rows.map((x) => [x.keys.join('+'), x.result])),
  });
  const rep = { rows, table: t, notes, derived, json };
  beforeJson?.(rep);
  process.stdout.write(`BENCH_JSON ${json}\n`);
  return rep;
}
