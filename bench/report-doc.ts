// The notes under the benchmark's table, and the generated section of BENCHMARKS.md.
import * as fs from 'fs';
import { Results } from './results';
import type { Row } from './report';

const int = (x: number) => Math.round(x).toLocaleString('en-US');
const fix = (x: number, n: number) => x.toFixed(n);
const signed = (x: number, n: number) => (x >= 0 ? '+' : '') + fix(x, n);

const LABEL: Record<string, string> = {
  direct_rate: 'Direct UDP, 1 flow', direct_rate_10k: 'Direct UDP, 10k flows', tunnel_rate: 'rsock, 1 flow',
  tunnel_rate_10k: 'rsock, 10k flows', tunnel_rate_1port: 'rsock, 1 port', tunnel_rate_100ports: 'rsock, 100 ports',
  rtr_direct_rate: 'Router path, direct UDP', rtr_tunnel_rate: 'Router path, rsock',
};
const INSTANCE: Record<string, string> = { A: '1-flow instance', B: '10k-flow instance', R: 'router-path instance' };

export function buildNotes(r: Results, rows: Row[], d: Record<string, number>): string[] {
  const { m, na, info } = r;
  const notes: string[] = [];
  for (const row of rows) for (const k of row.keys) if (!r.has(k) && na[k]) notes.push(`${row.metric}: n/a — ${na[k]}`);
  for (const k of Object.keys(na)) if (!rows.some((x) => x.keys.includes(k)) && !r.has(k)) notes.push(`${k}: n/a — ${na[k]}`);
  for (const k of Object.keys(LABEL)) {
    const lim = info[`${k}.limit`];
    if (lim) notes.push(`${LABEL[k]}: ${lim === 'sender' ? 'the flood was fully delivered, so the figure is the load generator\'s limit (a lower bound)' : lim}.`);
  }
  const fl = ['tunnel_rate', 'tunnel_rate_10k', 'tunnel_rate_1port', 'tunnel_rate_100ports', 'rtr_tunnel_rate']
    .filter((k) => info[`${k}.flood`] !== undefined)
    .map((k) => `${LABEL[k]} ${int(+info[`${k}.flood`])}/s of ${int(+info[`${k}.flood_offered`])}/s offered`);
  if (fl.length) notes.push(`Overload (sender at full speed) through rsock delivered: ${fl.join('; ')}.`);
  if (r.has('direct_rate_10k')) {
    notes.push(`Direct UDP with 10k flows: ${int(m.direct_rate_10k)} datagrams/s (${signed(-d.direct_flows_drop_pct, 1)} % vs 1 flow; the load generator then makes one syscall per datagram).`);
  }
  for (const [pre, where] of [['', ''], ['rtr_', 'router path, ']]) {
    const kr = ['direct_up', 'tunnel_up', 'direct_down', 'tunnel_down'].filter((k) => info[`${pre}kcp_${k}.rounds`])
      .map((k) => `${k.replace('_', ' ')} ${info[`${pre}kcp_${k}.rounds`].split(' ').map((x) => fix(+x, 0)).join(', ')}`);
    if (kr.length) notes.push(`${where ? 'Router path, kcptun' : 'kcptun'} rounds, Mbit/s: ${kr.join('; ')}.`);
  }
  if (info['rss_10k.flows_seen']) notes.push(`10k-flow hold: ${info['rss_10k.flows_seen']} distinct app flows reached the target.`);
  if (info['tunnel_rate_10k.flows_seen']) notes.push(`10k-flow rate probe: ${info['tunnel_rate_10k.flows_seen']} distinct app flows reached the target.`);
  for (const [pre, where] of [['', ''], ['rtr_', ' (router path)']]) {
    if (info[`${pre}cpu.client_us`]) {
      const f = (k: string, n: number) => fix(+info[`${pre}${k}`], n);
      notes.push(`CPU split at 20k/s${where}: client ${f('cpu.client_us', 2)} µs + server ${f('cpu.server_us', 2)} µs per datagram (${f('cpu.client_core_pct', 0)} % + ${f('cpu.server_core_pct', 0)} % of a core; ${f('cpu.delivered_pct', 1)} % of 100,000 offered delivered). Softirq work not charged to the processes is not counted.`);
    }
    if (info[`${pre}wire.bytes_per_dgram`]) {
      notes.push(`On the wire at 20k/s${where}, both directions, all frames (keepalives, ACKs) per delivered datagram: ${fix(+info[`${pre}wire.bytes_per_dgram`], 0)} B in ${fix(+info[`${pre}wire.packets_per_dgram`], 2)} frames (direct UDP: 1242 B in 1 frame).`);
    }
  }
  for (const [pre, where] of [['', 'veth path'], ['rtr_', 'router path']]) {
    const paced = [`${pre}rtt_paced_direct`, `${pre}rtt_paced_tunnel`].filter((k) => +(info[`${k}.lost`] ?? 0) > 0);
    if (paced.length) notes.push(`Paced RTT (${where}): ${paced.map((k) => `${k.includes('tunnel') ? 'rsock' : 'direct'} lost ${info[`${k}.lost`]} of ${+info[`${k}.samples`] + +info[`${k}.lost`]} pings`).join('; ')} (not counted in the percentiles).`);
  }
  if (info.rtr_invalid_drops !== undefined) notes.push(`Router path: the router dropped ${info.rtr_invalid_drops} packets as conntrack-invalid during the whole router-path run.`);
  for (const [name, label] of Object.entries(INSTANCE)) {
    if (info[`rss_peak_client_mb_${name}`]) {
      notes.push(`Peak RSS (VmHWM) at the end of the rate searches, ${label}: client ${info[`rss_peak_client_mb_${name}`]} MiB, server ${info[`rss_peak_server_mb_${name}`]} MiB.`);
    }
  }
  for (const k of Object.keys(info)) {
    const e = /^rsock_(client|server)_(exit|died)_(\d+)$/.exec(k);
    if (e && e[2] === 'exit') notes.push(`rsock-${e[1]} (start ${e[3]}) exited with status ${info[k]} when stopped with SIGTERM (0 expected).`);
    if (e && e[2] === 'died') notes.push(`rsock-${e[1]} (start ${e[3]}) exited by itself with status ${info[k]} before it was stopped.`);
  }
  if (info.rsock_note) notes.push(`${info.rsock_note}.`);
  for (const k of Object.keys(info)) {
    const c = /^counters_rsock-(client|server)-(\w+)$/.exec(k);
    if (c) notes.push(`rsock-${c[1]}, ${INSTANCE[c[2]] || c[2]}, at the end: \`${info[k].replace(/^.*?counters:/, 'counters:')}\``);
  }
  return [...new Set(notes)];
}

/** Replaces the section between the BENCH markers of `file` (or appends one) with this run. */
export function writeBenchmarks(file: string, r: Results, table: string, notes: string[]): void {
  const i = r.info;
  const how = i.command === 'npm run bench'
    ? '`sudo npm run bench` (runs `bash scripts/bench.sh`, that is `node dist/bench/main.js`)'
    : `\`sudo ${i.command}\``;
  const commands = [...new Set(r.commands)];
  const gen = [
    '<!-- BENCH:BEGIN (generated by bench/main.ts; edits inside are overwritten) -->',
    `Last run: ${i.date || '?'}, ${how}, rsock commit ${i.rsock_commit || '?'} ("+dirty": with uncommitted changes).`,
    '',
    `Kernel ${i.kernel || '?'}; CPU ${i.cpu || '?'}.`,
    '',
    table,
    '',
    ...(notes.length ? ['Notes:', '', ...notes.map((n) => `- ${n}`), ''] : []),
    ...(commands.length ? ['rsock command lines used (K is a per-run key):', '', '```', ...commands, '```', ''] : []),
    ...(r.probes.length
      ? ['<details><summary>Every rate probe (time, route, offered rate, flows, sent, target, unique delivered, …)</summary>', '',
        '```', ...r.probes, '```', '', '</details>', '']
      : []),
    '<!-- BENCH:END -->',
  ].join('\n');
  replaceSection(file, 'BENCH', gen);
}

/** Replaces the text between the `name` markers of `file` (gen includes the markers), or appends it under `heading`. */
export function replaceSection(file: string, name: string, gen: string, heading = ''): void {
  let doc = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
  const re = new RegExp(`<!-- ${name}:BEGIN[\\s\\S]*?<!-- ${name}:END -->`);
  if (doc && re.test(doc)) doc = doc.replace(re, () => gen);
  else doc = `${doc ? `${doc}\n\n` : '# Benchmarks\n\n'}${heading ? `${heading}\n\n` : ''}${gen}`;
  fs.writeFileSync(file, `${doc}\n`);
}
