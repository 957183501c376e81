// --workers=1 against --workers=2 (issue 10, item 4), on the veth path: two rsock instances side by
// side with the same ports count and --conns=2, one with one worker per end and one with two, the
// load generator and its sink pinned to CPU 0 (taskset) and rsock left to the scheduler. Probes of the
// two are interleaved, over 16 app flows (one flow can never use two workers: it is pinned to one).
// `sudo npm run bench -- --workers` runs only this; the full run runs it too. Both write the WORKERS
// section of BENCHMARKS.md.
import * as os from 'os';
import * as path from 'path';
import type { DirectPair } from '../test/lib/direct-pair';
import { sleep } from '../test/lib/proc';
import { REPO } from '../test/lib/rsock';
import { Instance, Instances } from './instances';
import { Measure } from './measure';
import { CONF, Options } from './options';
import { replaceSection } from './report-doc';
import { context, Results } from './results';
import { Prober } from './search';
import * as udpload from './udpload';

const FLOWS = 16;
/** The CPU the load generator and the sink are pinned to; rsock's threads may use every CPU. */
const LOAD_CPU = '0';

/** Per worker, the datagrams it took from the apps (client) and gave the target (server), from SIGUSR2. */
async function shares(i: Instance): Promise<string> {
  const out: string[] = [];
  for (const [side, p, key] of [['client', i.client, 'udpIn'], ['server', i.server, 'toTarget']] as const) {
    const mark = p.mark();
    p.signal('SIGUSR2');
    await sleep(500);
    const lines = p.output().slice(mark).split('\n').filter((l) => /\bw\d+ counters:/.test(l));
    const n = lines.map((l) => new RegExp(`\\b${key}=(\\d+)`).exec(l)?.[1] ?? '?');
    out.push(`${side} ${n.length ? n.join(' / ') : 'one thread'}`);
  }
  return out.join('; ');
}

/** The comparison itself, on a pair that is up with udpload serve running (pinned or not). */
export async function workersComparison(r: Results, prober: Prober, inst: Instances, measure: Measure): Promise<string[]> {
  const target = `127.0.0.1:${CONF.targetPort}`;
  const cores = os.availableParallelism();
  r.say(`workers: --workers=1 (ports 10001-10010, ludp :${CONF.ludp}) against --workers=2 (ports 10011-10020, ludp :${CONF.ludp2}), --conns=2, ${FLOWS} flows, load on CPU ${LOAD_CPU} of ${cores}`);
  udpload.pinLoad(LOAD_CPU);
  const w1 = await inst.start('W1', '10001-10010', target, CONF.ludp, ['--workers=1'], ['--conns=2']);
  const w2 = w1 ? await inst.start('W2', '10011-10020', target, CONF.ludp2, ['--workers=2'], ['--conns=2']) : undefined;
  const lines: string[] = [];
  try {
    if (!w1 || !w2) {
      for (const k of ['workers1_rate', 'workers2_rate']) r.missing(k, inst.reason);
      return [`n/a: ${inst.reason}`];
    }
    await sleep(1500);
    await prober.search(false, [{ key: 'workers1_rate', route: 'tunnel', flows: FLOWS }, { key: 'workers2_rate', route: `tunnel:${CONF.ludp2}`, flows: FLOWS }]);
    r.say('workers: CPU per datagram at 20k/s over 16 flows, --workers=1 then --workers=2');
    const cpu1 = await measure.cpu(w1, 'workers1_', 'tunnel', FLOWS);
    const cpu2 = await measure.cpu(w2, 'workers2_', `tunnel:${CONF.ludp2}`, FLOWS);
    const { m, info } = r;
    const ratio = (a: number | undefined, b: number | undefined) => (a && b ? (b / a).toFixed(2) : 'n/a');
    const share1 = await shares(w1);
    const share2 = await shares(w2);
    lines.push(
      '| | --workers=1 | --workers=2 | ratio 2/1 |',
      '|---|---|---|---|',
      `| 1200 B datagrams/s at < 1 % loss, ${FLOWS} flows | ${Math.round(m.workers1_rate ?? 0).toLocaleString('en-US')} | ${Math.round(m.workers2_rate ?? 0).toLocaleString('en-US')} | ${ratio(m.workers1_rate, m.workers2_rate)} |`,
      `| CPU µs per datagram at 20k/s (both ends, all threads) | ${cpu1?.toFixed(1) ?? 'n/a'} | ${cpu2?.toFixed(1) ?? 'n/a'} | ${ratio(cpu1, cpu2)} |`,
      `| of which client / server | ${(+info['workers1_cpu.client_us']).toFixed(1)} / ${(+info['workers1_cpu.server_us']).toFixed(1)} | ${(+info['workers2_cpu.client_us']).toFixed(1)} / ${(+info['workers2_cpu.server_us']).toFixed(1)} | |`,
      `| % of a core, client + server, at 20k/s | ${(+info['workers1_cpu.client_core_pct']).toFixed(0)} + ${(+info['workers1_cpu.server_core_pct']).toFixed(0)} | ${(+info['workers2_cpu.client_core_pct']).toFixed(0)} + ${(+info['workers2_cpu.server_core_pct']).toFixed(0)} | |`,
      '',
      `Datagrams per worker over the whole comparison (SIGUSR2): --workers=1: ${share1}; --workers=2: ${share2}.`,
      `Overload (flood) delivered: --workers=1 ${info['workers1_rate.flood'] ?? '?'}/s of ${info['workers1_rate.flood_offered'] ?? '?'}/s offered; --workers=2 ${info['workers2_rate.flood'] ?? '?'}/s of ${info['workers2_rate.flood_offered'] ?? '?'}/s.`,
    );
    r.say(`workers: rate ${Math.round(m.workers1_rate ?? 0)} vs ${Math.round(m.workers2_rate ?? 0)} /s (ratio ${ratio(m.workers1_rate, m.workers2_rate)}); CPU ${cpu1?.toFixed(1)} vs ${cpu2?.toFixed(1)} us/datagram; ${share2}`);
  } finally {
    udpload.pinLoad(null);
    for (const i of [w1, w2]) if (i) await inst.stop(i);
  }
  return lines;
}

/** Writes the WORKERS section of BENCHMARKS.md from a comparison's lines. */
export function writeWorkers(r: Results, lines: string[]): void {
  const i = r.info;
  const probes = r.probes.filter((p) => /\t(tunnel|tunnel:\d+)\t/.test(p) && /flows=16\t/.test(p));
  const gen = ['<!-- WORKERS:BEGIN (generated by bench/workers.ts; edits inside are overwritten) -->',
    `Last run: ${i.date}, \`sudo ${i.command}\`, rsock commit ${i.rsock_commit}. Kernel ${i.kernel}; CPU ${i.cpu}. Load generator and sink pinned to CPU ${LOAD_CPU} (taskset), rsock unpinned.`, '',
    ...lines, '',
    '<details><summary>The rate probes of this comparison</summary>', '', '```', ...probes, '```', '', '</details>',
    '<!-- WORKERS:END -->'].join('\n');
  replaceSection(path.join(REPO, 'BENCHMARKS.md'), 'WORKERS', gen, '## Worker threads: --workers=1 against --workers=2 (issue 10, item 4)');
}

/** `--workers`: only the comparison, on a fresh veth pair. */
export async function runWorkers(o: Options, r: Results, pair: DirectPair): Promise<number> {
  await udpload.buildUdpload();
  await pair.up();
  await pair.exec('client', ['sysctl', '-qw', `net.ipv4.ip_local_reserved_ports=${CONF.sportBase}-${CONF.sportBase + 10999}`], { allowFail: true });
  context(r, o);
  udpload.pinLoad(LOAD_CPU);
  await udpload.startServe(pair, `0.0.0.0:${CONF.targetPort}`, 600);
  const prober = new Prober(pair, r);
  const inst = new Instances(pair, r, `bench-${pair.id}`);
  const lines = await workersComparison(r, prober, inst, new Measure(pair, r, prober, inst));
  process.stdout.write(`${lines.join('\n')}\n`);
  if (o.write) writeWorkers(r, lines);
  return r.has('workers1_rate') && r.has('workers2_rate') ? 0 : 1;
}
