#!/usr/bin/env node
// Renders the results of scripts/bench.sh: a table on stdout, a final "BENCH_JSON {...}" line,
// and (with --write FILE) the generated section of BENCHMARKS.md.
//
//   node bench/report.js RESULTS [--write BENCHMARKS.md] [--probes probes.tsv] [--commands commands.txt]
//
// RESULTS holds lines "key=value" (a figure), "na.key=reason" (why a figure is missing) and
// "info.key=value" (context).
'use strict';
const fs = require('fs');

const argv = process.argv.slice(2);
const file = argv[0];
const opt = (name) => {
  const i = argv.indexOf(name);
  return i > 0 ? argv[i + 1] : undefined;
};
if (!file) {
  console.error('usage: report.js RESULTS [--write FILE] [--probes FILE] [--commands FILE]');
  process.exit(1);
}

const m = {}, na = {}, info = {};
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  const eq = line.indexOf('=');
  if (eq < 0) continue;
  const k = line.slice(0, eq), v = line.slice(eq + 1);
  if (k.startsWith('na.')) na[k.slice(3)] = v;
  else if (k.startsWith('info.')) info[k.slice(5)] = v;
  else if (v !== '' && Number.isFinite(Number(v))) m[k] = Number(v);
  else na[k] = na[k] || `not a number: ${v}`;
}
const has = (k) => typeof m[k] === 'number';
const smoke = info.mode === 'smoke';

// ---------- derived figures
const d = {};
const ratio = (a, b) => (has(a) && has(b) && m[b] > 0 ? m[a] / m[b] : undefined);
d.rate_ratio = ratio('tunnel_rate', 'direct_rate');
d.kcp_up_ratio = ratio('kcp_tunnel_up_mbps', 'kcp_direct_up_mbps');
d.kcp_down_ratio = ratio('kcp_tunnel_down_mbps', 'kcp_direct_down_mbps');
if (has('rtt_tunnel_p50_ms') && has('rtt_direct_p50_ms')) d.rtt_added_p50_ms = m.rtt_tunnel_p50_ms - m.rtt_direct_p50_ms;
if (has('rtt_tunnel_p99_ms') && has('rtt_direct_p99_ms')) d.rtt_added_p99_ms = m.rtt_tunnel_p99_ms - m.rtt_direct_p99_ms;
const r10k = ratio('tunnel_rate_10k', 'tunnel_rate');
if (r10k !== undefined) d.flows_drop_pct = (1 - r10k) * 100;
const r100 = ratio('tunnel_rate_100ports', 'tunnel_rate_1port');
if (r100 !== undefined) d.ports_drop_pct = (1 - r100) * 100;
const rd10k = ratio('direct_rate_10k', 'direct_rate');
if (rd10k !== undefined) d.direct_flows_drop_pct = (1 - rd10k) * 100;

// ---------- formatting
const int = (x) => Math.round(x).toLocaleString('en-US');
const f = (x, n) => x.toFixed(n);
const val = (k, fmt) => (has(k) ? fmt(m[k]) : 'n/a');
const dv = (x, fmt) => (x === undefined ? 'n/a' : fmt(x));
const verdict = (x, ok) => (x === undefined ? 'n/a' : ok(x) ? 'PASS' : 'FAIL');
const whyNa = (...keys) => keys.filter((k) => !has(k) && na[k]).map((k) => na[k]);
const ms = (x) => f(x, 3);
const mib = (x) => f(x, 1);
const signed = (x, n) => (x >= 0 ? '+' : '') + f(x, n);

const rows = [];
const row = (metric, base, rs, rel, target, result, keys) => {
  // the last key is rsock's own figure; rows without it or a reason are not part of the smoke subset
  const own = keys[keys.length - 1];
  if (smoke && !has(own) && !na[own]) return;
  rows.push({ metric, base, rs, rel, target, result, keys });
};
row('Datagrams/s, 1200 B, < 1 % loss (baseline: direct UDP)', val('direct_rate', int), val('tunnel_rate', int),
  dv(d.rate_ratio, (x) => `${f(x * 100, 0)} %`), '≥ 60 %', verdict(d.rate_ratio, (x) => x >= 0.6), ['direct_rate', 'tunnel_rate']);
row('kcptun goodput client→server, Mbit/s (baseline: kcptun on UDP)', val('kcp_direct_up_mbps', (x) => f(x, 0)),
  val('kcp_tunnel_up_mbps', (x) => f(x, 0)), dv(d.kcp_up_ratio, (x) => f(x, 2)), '≥ 0.9', verdict(d.kcp_up_ratio, (x) => x >= 0.9),
  ['kcp_direct_up_mbps', 'kcp_tunnel_up_mbps']);
row('kcptun goodput server→client (-R), Mbit/s', val('kcp_direct_down_mbps', (x) => f(x, 0)),
  val('kcp_tunnel_down_mbps', (x) => f(x, 0)), dv(d.kcp_down_ratio, (x) => f(x, 2)), '≥ 0.9', verdict(d.kcp_down_ratio, (x) => x >= 0.9),
  ['kcp_direct_down_mbps', 'kcp_tunnel_down_mbps']);
row('UDP ping-pong RTT p50, ms (baseline: direct)', val('rtt_direct_p50_ms', ms), val('rtt_tunnel_p50_ms', ms),
  dv(d.rtt_added_p50_ms, (x) => `${signed(x, 3)} ms`), '≤ +0.1 ms', verdict(d.rtt_added_p50_ms, (x) => x <= 0.1),
  ['rtt_direct_p50_ms', 'rtt_tunnel_p50_ms']);
row('UDP ping-pong RTT p99, ms', val('rtt_direct_p99_ms', ms), val('rtt_tunnel_p99_ms', ms),
  dv(d.rtt_added_p99_ms, (x) => `${signed(x, 3)} ms`), '≤ +0.5 ms', verdict(d.rtt_added_p99_ms, (x) => x <= 0.5),
  ['rtt_direct_p99_ms', 'rtt_tunnel_p99_ms']);
row('CPU per datagram, client+server, µs (20k/s, 5 s)', '—', val('cpu_us_per_dgram', (x) => f(x, 2)), '—', '≤ 10 µs',
  verdict(m.cpu_us_per_dgram, (x) => x <= 10), ['cpu_us_per_dgram']);
const pair = (a, b) => (has(a) || has(b) ? `${val(a, mib)} / ${val(b, mib)}` : 'n/a');
const both = (a, b, lim) => (has(a) && has(b) ? (m[a] <= lim && m[b] <= lim ? 'PASS' : 'FAIL') : 'n/a');
row('RSS idle, client / server, MiB', '—', pair('rss_idle_client_mb', 'rss_idle_server_mb'), '—', '≤ 60 each',
  both('rss_idle_client_mb', 'rss_idle_server_mb', 60), ['rss_idle_client_mb', 'rss_idle_server_mb']);
row('RSS with 10k live flows, client / server, MiB', '—', pair('rss_10k_client_mb', 'rss_10k_server_mb'), '—', '≤ 120 each',
  both('rss_10k_client_mb', 'rss_10k_server_mb', 120), ['rss_10k_client_mb', 'rss_10k_server_mb']);
row('Datagrams/s with 10k flows (baseline: rsock, 1 flow)', val('tunnel_rate', int), val('tunnel_rate_10k', int),
  dv(d.flows_drop_pct, (x) => `${signed(-x, 1)} %`), '> -10 %', verdict(d.flows_drop_pct, (x) => x < 10),
  ['tunnel_rate', 'tunnel_rate_10k']);
row('Datagrams/s with 100 ports (baseline: rsock, 1 port)', val('tunnel_rate_1port', int), val('tunnel_rate_100ports', int),
  dv(d.ports_drop_pct, (x) => `${signed(-x, 1)} %`), '> -10 %', verdict(d.ports_drop_pct, (x) => x < 10),
  ['tunnel_rate_1port', 'tunnel_rate_100ports']);
row('Header bytes per datagram beyond IP+TCP headers', '0 (UDP: 8 B header)', val('header_bytes', (x) => f(x, 0)),
  has('header_bytes') && info['header.tcp_options_bytes'] ? `+ ${info['header.tcp_options_bytes']} B TCP options` : '—',
  '≤ 16 B', verdict(m.header_bytes, (x) => x <= 16), ['header_bytes']);

// ---------- notes
const notes = [];
for (const r of rows) for (const why of whyNa(...r.keys)) notes.push(`${r.metric}: n/a — ${why}`);
for (const k of Object.keys(na)) if (!rows.some((r) => r.keys.includes(k)) && !has(k)) notes.push(`${k}: n/a — ${na[k]}`);
const LABEL = {
  direct_rate: 'Direct UDP, 1 flow', direct_rate_10k: 'Direct UDP, 10k flows', tunnel_rate: 'rsock, 1 flow',
  tunnel_rate_10k: 'rsock, 10k flows', tunnel_rate_1port: 'rsock, 1 port', tunnel_rate_100ports: 'rsock, 100 ports',
};
for (const k of Object.keys(LABEL))
  if (info[`${k}.limit`]) notes.push(`${LABEL[k]}: ${info[`${k}.limit`] === 'sender' ? 'the flood was fully delivered, so the figure is the load generator\'s limit (a lower bound)' : info[`${k}.limit`]}.`);
{
  const fl = ['tunnel_rate', 'tunnel_rate_10k', 'tunnel_rate_1port', 'tunnel_rate_100ports']
    .filter((k) => info[`${k}.flood`] !== undefined)
    .map((k) => `${LABEL[k]} ${int(+info[`${k}.flood`])}/s of ${int(+info[`${k}.flood_offered`])}/s offered`);
  if (fl.length) notes.push(`Overload (sender at full speed) through rsock delivered: ${fl.join('; ')}.`);
}
if (has('direct_rate_10k')) notes.push(`Direct UDP with 10k flows: ${int(m.direct_rate_10k)} datagrams/s (${signed(-d.direct_flows_drop_pct, 1)} % vs 1 flow; the load generator then makes one syscall per datagram).`);
{
  const kr = ['direct_up', 'tunnel_up', 'direct_down', 'tunnel_down'].filter((k) => info[`kcp_${k}.rounds`])
    .map((k) => `${k.replace('_', ' ')} ${info[`kcp_${k}.rounds`].split(' ').map((x) => f(+x, 0)).join(', ')}`);
  if (kr.length) notes.push(`kcptun rounds, Mbit/s: ${kr.join('; ')}.`);
}
if (info['rss_10k.flows_seen']) notes.push(`10k-flow hold: ${info['rss_10k.flows_seen']} distinct app flows reached the target.`);
if (info['tunnel_rate_10k.flows_seen']) notes.push(`10k-flow rate probe: ${info['tunnel_rate_10k.flows_seen']} distinct app flows reached the target.`);
if (info['cpu.client_us']) notes.push(`CPU split at 20k/s: client ${f(+info['cpu.client_us'], 2)} µs + server ${f(+info['cpu.server_us'], 2)} µs per datagram (${f(+info['cpu.client_core_pct'], 0)} % + ${f(+info['cpu.server_core_pct'], 0)} % of a core; ${f(+info['cpu.delivered_pct'], 1)} % of 100,000 offered delivered). Softirq work not charged to the processes is not counted.`);
if (info['wire.bytes_per_dgram']) notes.push(`On the wire at 20k/s, both directions, all frames (keepalives, ACKs) per delivered datagram: ${f(+info['wire.bytes_per_dgram'], 0)} B in ${f(+info['wire.packets_per_dgram'], 2)} frames (direct UDP: 1242 B in 1 frame).`);
if (info.rss_peak_client_mb_A) notes.push(`Peak RSS (VmHWM) at the end of the rate searches, 1-flow instance: client ${info.rss_peak_client_mb_A} MiB, server ${info.rss_peak_server_mb_A} MiB.`);
if (info.rss_peak_client_mb_B) notes.push(`Peak RSS (VmHWM) at the end of the rate searches, 10k-flow instance: client ${info.rss_peak_client_mb_B} MiB, server ${info.rss_peak_server_mb_B} MiB.`);
for (const k of Object.keys(info)) {
  const e = /^rsock_(client|server)_(exit|died)_(\d+)$/.exec(k);
  if (e && e[2] === 'exit') notes.push(`rsock-${e[1]} (start ${e[3]}) exited with status ${info[k]} when stopped with SIGTERM (0 expected).`);
  if (e && e[2] === 'died') notes.push(`rsock-${e[1]} (start ${e[3]}) exited by itself with status ${info[k]} before it was stopped.`);
}
if (info.rsock_note) notes.push(info.rsock_note + '.');
const INSTANCE = { A: '1-flow instance', B: '10k-flow instance' };
for (const k of Object.keys(info)) {
  const c = /^counters_rsock-(client|server)-(\w+)$/.exec(k);
  if (c) notes.push(`rsock-${c[1]}, ${INSTANCE[c[2]] || c[2]}, at the end: \`${info[k].replace(/^.*?counters:/, 'counters:')}\``);
}

const uniqNotes = [...new Set(notes)];
notes.length = 0;
notes.push(...uniqNotes);

// ---------- table
const head = ['Metric', 'Baseline', 'rsock', 'rsock vs baseline', 'Target', 'Result'];
const cells = rows.map((r) => [r.metric, r.base, r.rs, r.rel, r.target, r.result]);
const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
const line = (c) => `| ${c.map((x, i) => x.padEnd(width[i])).join(' | ')} |`;
const table = [line(head), `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');

const header = [
  `Mode: ${info.mode || '?'}   Date: ${info.date || '?'}   rsock: ${info.rsock_commit || '?'}`,
  `Kernel: ${info.kernel || '?'}   CPU: ${info.cpu || '?'}`,
  `Command: sudo ${info.command || 'bash scripts/bench.sh'}`,
].join('\n');
process.stdout.write(`\n${header}\n\n${table}\n`);
if (notes.length) process.stdout.write(`\n${notes.map((n) => `- ${n}`).join('\n')}\n`);

// ---------- BENCHMARKS.md
const out = opt('--write');
if (out) {
  const read = (p) => (p && fs.existsSync(p) ? fs.readFileSync(p, 'utf8').trim() : '');
  const commands = read(opt('--commands'));
  const probes = read(opt('--probes'));
  const gen = [
    '<!-- BENCH:BEGIN (generated by scripts/bench.sh; edits inside are overwritten) -->',
    `Last run: ${info.date || '?'}, ` +
      (info.command === 'bash scripts/bench.sh' ? '`sudo npm run bench` (runs `bash scripts/bench.sh`)' : `\`sudo ${info.command}\``) +
      `, rsock commit ${info.rsock_commit || '?'} ("+dirty": with uncommitted changes).`,
    '',
    `Kernel ${info.kernel || '?'}; CPU ${info.cpu || '?'}.`,
    '',
    table,
    '',
    ...(notes.length ? ['Notes:', '', ...notes.map((n) => `- ${n}`), ''] : []),
    ...(commands ? ['rsock command lines used (K is a per-run key):', '', '```', ...[...new Set(commands.split('\n'))], '```', ''] : []),
    ...(probes
      ? ['<details><summary>Every rate probe (time, route, offered rate, flows, sent, target, unique delivered, …)</summary>', '',
        '```', probes, '```', '', '</details>', '']
      : []),
    '<!-- BENCH:END -->',
  ].join('\n');
  let doc = read(out);
  const re = /<!-- BENCH:BEGIN[\s\S]*?<!-- BENCH:END -->/;
  if (doc && re.test(doc)) doc = doc.replace(re, gen);
  else doc = (doc ? `${doc}\n\n` : '# Benchmarks\n\n') + gen;
  fs.writeFileSync(out, `${doc}\n`);
  process.stdout.write(`\nwrote ${out}\n`);
}

// ---------- machine-readable line
const json = {
  mode: info.mode, date: info.date, kernel: info.kernel, cpu: info.cpu, command: info.command, rsock: info.rsock_commit,
  metrics: Object.fromEntries(Object.entries({ ...m, ...d }).filter(([, v]) => Number.isFinite(v)).map(([k, v]) => [k, Math.round(v * 1e4) / 1e4])),
  na,
  pass: Object.fromEntries(rows.map((r) => [r.keys.join('+'), r.result])),
};
process.stdout.write(`BENCH_JSON ${JSON.stringify(json)}\n`);
