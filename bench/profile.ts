// Where rsock's CPU time and latency go (issue 10): one rsock pair on the benchmark's namespaces
// (bench/main.ts's DirectPair, udpload, the same rsock command lines), driven by the benchmark's
// paced 20,000/s × 1200 B probe and its UDP ping-pong. Run it under the shared measurement lock:
//
//   flock /tmp/rsock-measure.lock node dist/bench/profile.js [--rate=20000] [--secs=5] [--pings=10000]
//         [--skip=pass1,perf,jsprof] [--node-flags='--trace-deopt ...' (pass 2)] [--ab=DIR [--rounds=6] [--ab-flags='--single-threaded-gc ...']] [--keep]
//
// Pass 0 (--ab=DIR, DIR the root of another build, e.g. a copy of main's bin/ dist/ build/): both
//   builds side by side, probes and ping-pongs alternating, medians of CPU/datagram and RTT. --ab-flags:
//   node flags for this build's pair only (--ab=. then compares a flag against none on one build).
// Pass 1 (plain processes, node --perf-basic-prof so that perf can name JIT frames):
//   - CPU per datagram per side: utime+stime from /proc over a clean probe;
//   - syscalls and context switches per datagram per side: `perf stat` tracepoints over a second probe;
//   - `perf record -a -e cpu-clock` over a third probe: µs per datagram by process and DSO, top symbols;
//   - RTT: ping-pong direct and through rsock, p50 / p99.
// Pass 2 (node --cpu-prof --trace-gc): top JS functions (self and inclusive) over a probe, and the
//   collections and pauses during a probe and a ping-pong.
import * as fs from 'fs';
import * as path from 'path';
import { DirectPair } from '../test/lib/direct-pair';
import { exec, Proc, sleep } from '../test/lib/proc';
import { clockTicks, cpuTicks, mainThreadSleeps } from '../test/lib/procstat';
import { clientArgs, LOG, READY_TIMEOUT_MS, serverArgs } from '../test/lib/rsock';
import { CONF } from './options';
import { perfReport, perfStages, perfStat, perfTotal, readCpuProfile, readTraceGc, statEvents } from './profile-tools';
import { Results } from './results';
import { Prober } from './search';
import { median } from './stats';
import * as udpload from './udpload';

interface Opts { flags: string[]; abFlags: string[]; rate: number; secs: number; pings: number; skip: Set<string>; keep: boolean; ab?: string; rounds: number; swap: boolean }
interface Pair { server: Proc; client: Proc }

function parse(argv: string[]): Opts {
  const o: Opts = { flags: [], abFlags: [], rate: 20000, secs: 5, pings: 10000, skip: new Set(), keep: false, rounds: 6, swap: false };
  for (const a of argv) {
    const [k, v] = a.split('=');
    if (k === '--rate') o.rate = Number(v);
    else if (k === '--secs') o.secs = Number(v);
    else if (k === '--pings') o.pings = Number(v);
    else if (k === '--skip') for (const s of (v ?? '').split(',')) o.skip.add(s);
    else if (k === '--keep') o.keep = true;
    else if (k === '--ab') o.ab = path.resolve(v);
    else if (k === '--swap') o.swap = true;
    else if (k === '--rounds') o.rounds = Number(v);
    else if (k === '--ab-flags') o.abFlags = a.slice('--ab-flags='.length).split(' ').filter(Boolean);
    else if (k === '--node-flags') o.flags = a.slice('--node-flags='.length).split(' ').filter(Boolean);
    else throw new Error(`profile: unknown argument ${a}`);
  }
  return o;
}

const say = (s: string) => process.stdout.write(`${s}\n`);
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

/** rsock-server then rsock-client, with `nodeFlags`; `base`: the root of another build (its bin/ is run instead). */
async function startPair(pair: DirectPair, key: string, nodeFlags: string[], tag: string, at = { ports: '10001-10010', ludp: CONF.ludp as number },
  base?: string): Promise<Pair> {
  const ports = at.ports;
  const withFlags = (a: string[], prog: string) => [a[0], ...nodeFlags, base ? path.join(base, 'bin', prog) : a[1], ...a.slice(2)];
  const server = pair.spawn('server', withFlags(serverArgs(pair, { ports, key, taddr: `127.0.0.1:${CONF.targetPort}` }), 'rsock-server.js'), { name: `server-${tag}` });
  await server.waitFor(LOG.ready, READY_TIMEOUT_MS);
  const client = pair.spawn('client', withFlags(clientArgs(pair, { ports, key, ludp: `127.0.0.1:${at.ludp}` }), 'rsock-client.js'), { name: `client-${tag}` });
  await client.waitFor(LOG.ready, READY_TIMEOUT_MS);
  await sleep(1000); // every connection up
  return { server, client };
}


/**
 * Pass 0 (--ab=DIR): this build against the build in DIR, side by side on disjoint ports (as the
 * benchmark runs its instances A and B), probes and ping-pongs alternating round by round, so that
 * both see the same machine. Medians of the rounds.
 */
async function passAb(pair: DirectPair, prober: Prober, o: Opts, key: string): Promise<void> {
  // --swap: the base build on the first port set instead, in case the sets differ.
  const sets = [{ ports: '10011-10020', ludp: CONF.ludp2 as number }, { ports: '10001-10010', ludp: CONF.ludp as number }];
  if (o.swap) sets.reverse();
  const route = (ludp: number) => (ludp === CONF.ludp ? 'tunnel' as const : `tunnel:${ludp}` as const);
  const base = await startPair(pair, key, [], 'base', sets[0], o.ab);
  const mine = await startPair(pair, key, o.abFlags, 'this', sets[1]);
  const runs = [{ name: `base (${o.ab})`, p: base, route: route(sets[0].ludp), cpu: [] as number[], cs: [] as number[], p50: [] as number[], p99: [] as number[] },
    { name: `this build${o.abFlags.length ? ` (${o.abFlags.join(' ')})` : ''}`, p: mine, route: route(sets[1].ludp), cpu: [] as number[], cs: [] as number[], p50: [] as number[], p99: [] as number[] }];
  try {
    say(`\n## A/B: ${o.rounds} rounds of a ${o.rate}/s x ${o.secs} s probe and ${o.pings} pings each, alternating`);
    const t0 = runs.map((r) => cpuTicks(r.p.client.pid)! + cpuTicks(r.p.server.pid)!);
    await sleep(3000);
    say(`idle CPU over 3 s, client+server: ${runs.map((r, i) => `${r.name} ${(((cpuTicks(r.p.client.pid)! + cpuTicks(r.p.server.pid)! - t0[i]) * 100) / clockTicks() / 3).toFixed(1)} %`).join(', ')}`);
    for (const r of runs) await prober.probe(r.route, o.rate, 1, 1);
    for (let i = 0; i < o.rounds; i++) {
      for (const r of i % 2 ? [...runs].reverse() : runs) {
        const c0 = cpuTicks(r.p.client.pid)! + cpuTicks(r.p.server.pid)!;
        const w0 = mainThreadSleeps(r.p.client.pid);
        const pr = await prober.probe(r.route, o.rate, o.secs, 1);
        const c1 = cpuTicks(r.p.client.pid)! + cpuTicks(r.p.server.pid)!;
        r.cpu.push(((c1 - c0) * 1e6) / clockTicks() / Math.max(1, pr.rate * o.secs));
        r.cs.push((mainThreadSleeps(r.p.client.pid) - w0) / Math.max(1, pr.rate * o.secs));
        const png = await udpload.ping(pair, 'client', prober.dst(r.route), o.pings, 100, 200, 30);
        r.p50.push(png.p50us ?? NaN);
        r.p99.push(png.p99us ?? NaN);
      }
    }
    for (const r of runs) {
      say(`${r.name.padEnd(40)} CPU/datagram median ${median(r.cpu).toFixed(2)} us [${r.cpu.map((x) => x.toFixed(1)).join(' ')}]; ` +
        `client sleeps/datagram ${median(r.cs).toFixed(2)}; RTT p50 median ${median(r.p50).toFixed(0)} us [${r.p50.map((x) => x.toFixed(0)).join(' ')}], p99 median ${median(r.p99).toFixed(0)} us [${r.p99.map((x) => x.toFixed(0)).join(' ')}]`);
    }
  } finally {
    await stopPair(mine);
    await stopPair(base);
  }
}

async function stopPair(p: Pair): Promise<void> {
  await p.client.stop(5000);
  await p.server.stop(5000);
}

async function rtt(pair: DirectPair, prober: Prober, route: 'direct' | 'tunnel', n: number): Promise<string> {
  const p = await udpload.ping(pair, 'client', prober.dst(route), n, 200, 200, 30);
  return `p50 ${p.p50us} us, p99 ${p.p99us} us (${p.samples} samples, ${p.lost} lost)`;
}

async function pass1(pair: DirectPair, prober: Prober, o: Opts, key: string): Promise<void> {
  const p = await startPair(pair, key, ['--perf-basic-prof'], 'plain');
  try {
    say(`\n## Pass 1: plain processes (client pid ${p.client.pid}, server pid ${p.server.pid})`);
    await prober.probe('tunnel', o.rate, 1, 1); // warm-up: the JIT has compiled the data path
    const c0 = cpuTicks(p.client.pid)!;
    const s0 = cpuTicks(p.server.pid)!;
    const pr = await prober.probe('tunnel', o.rate, o.secs, 1);
    const c1 = cpuTicks(p.client.pid)!;
    const s1 = cpuTicks(p.server.pid)!;
    const delivered = Math.round(pr.rate * o.secs);
    const us = (t: number) => ((t * 1e6) / clockTicks() / delivered).toFixed(2);
    say(`CPU per datagram (/proc utime+stime, ${delivered} of ${o.rate * o.secs} delivered): client ${us(c1 - c0)} us + server ${us(s1 - s0)} us = ${us(c1 - c0 + s1 - s0)} us`);

    const events = statEvents();
    const stats = await Promise.all([perfStat(p.client.pid, o.secs, events), perfStat(p.server.pid, o.secs, events),
      prober.probe('tunnel', o.rate, o.secs, 1)]);
    const d2 = Math.round(stats[2].rate * o.secs);
    say(`\nPer datagram over a second probe (perf stat, all threads, ${d2} delivered):`);
    say(`${'event'.padEnd(18)} ${'client'.padStart(8)} ${'server'.padStart(8)}`);
    const names = new Set([...Object.keys(stats[0]), ...Object.keys(stats[1])]);
    for (const n of names) {
      const c = stats[0][n] ?? 0;
      const s = stats[1][n] ?? 0;
      if (c + s === 0) continue;
      // task-clock is in ms: shown as µs per datagram like the rest of the table's CPU figures.
      const f = (v: number) => (n === 'task-clock' ? (v * 1000) / d2 : v / d2).toFixed(3).padStart(8);
      say(`${(n === 'task-clock' ? 'task-clock (us)' : n).padEnd(18)} ${f(c)} ${f(s)}`);
    }

    if (!o.skip.has('perf')) {
      const file = path.join(pair.logDir, 'perf.data');
      const rec = exec(['perf', 'record', '-q', '-a', '-g', '-e', 'cpu-clock', '-F', '2999', '-o', file, '--', 'sleep', String(o.secs)],
        { allowFail: true, timeoutMs: (o.secs + 30) * 1000 });
      const pp = await prober.probe('tunnel', o.rate, o.secs, 1);
      await rec;
      const d3 = Math.round(pp.rate * o.secs);
      const total = await perfTotal(file);
      say(`\nperf record -a -e cpu-clock over a third probe (${d3} delivered): CPU per datagram, % of all samples`);
      for (const [side, pid] of [['client', p.client.pid], ['server', p.server.pid]] as const) {
        say(`rsock-${side}, by DSO:`);
        for (const l of await perfReport(file, pid, 'dso', total, d3, 0.2)) say(l);
        say(`rsock-${side}, kernel stages (inclusive):`);
        for (const l of await perfStages(file, pid, total, d3)) say(l);
        say(`rsock-${side}, top symbols:`);
        for (const l of (await perfReport(file, pid, 'dso,sym', total, d3, 0.15)).slice(0, 45)) say(l);
      }
    }

    say('\nRTT, UDP ping-pong, one datagram in flight:');
    say(`  direct: ${await rtt(pair, prober, 'direct', o.pings)}`);
    const q0 = [cpuTicks(p.client.pid)!, cpuTicks(p.server.pid)!];
    say(`  tunnel: ${await rtt(pair, prober, 'tunnel', o.pings)}`);
    const q1 = [cpuTicks(p.client.pid)!, cpuTicks(p.server.pid)!];
    const perPing = (i: number) => (((q1[i] - q0[i]) * 1e6) / clockTicks() / (o.pings + 200)).toFixed(1);
    say(`  CPU per ping (both ways through each process): client ${perPing(0)} us, server ${perPing(1)} us`);
    if (!o.skip.has('perf')) {
      const file = path.join(pair.logDir, 'perf-ping.data');
      const rec = exec(['perf', 'record', '-q', '-a', '-g', '-e', 'cpu-clock', '-F', '2999', '-o', file, '--', 'sleep', '2'],
        { allowFail: true, timeoutMs: 40_000 });
      const png = await udpload.ping(pair, 'client', prober.dst('tunnel'), 1_000_000, 0, 200, 2);
      await rec;
      const total = await perfTotal(file);
      say(`perf record -a over 2 s of ping-pong (${png.samples} pings): CPU per ping, % of all samples`);
      for (const [side, pid] of [['client', p.client.pid], ['server', p.server.pid]] as const) {
        say(`rsock-${side}, by DSO:`);
        for (const l of await perfReport(file, pid, 'dso', total, png.samples + png.lost, 0.2)) say(l);
        say(`rsock-${side}, top symbols:`);
        for (const l of (await perfReport(file, pid, 'dso,sym', total, png.samples + png.lost, 0.2)).slice(0, 30)) say(l);
      }
    }
  } finally {
    await stopPair(p);
    for (const pid of [p.client.pid, p.server.pid]) fs.rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
}

async function pass2(pair: DirectPair, prober: Prober, o: Opts, key: string): Promise<void> {
  const dir = path.join(pair.logDir, 'cpuprof');
  fs.mkdirSync(dir, { recursive: true });
  const p = await startPair(pair, key, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200', '--trace-gc', ...o.flags], 'prof');
  const roles = { [p.client.pid]: 'client', [p.server.pid]: 'server' } as Record<number, string>;
  let from = 0;
  let to = 0;
  let delivered = 0;
  let gcMark = { client: 0, server: 0 };
  let gcText = { client: '', server: '' };
  try {
    say('\n## Pass 2: node --cpu-prof --trace-gc');
    await prober.probe('tunnel', o.rate, 1, 1);
    gcMark = { client: p.client.mark(), server: p.server.mark() };
    from = monoUs();
    const pr = await prober.probe('tunnel', o.rate, o.secs, 1);
    to = monoUs() - 400_000; // the probe's drain pause is not load
    delivered = Math.round(pr.rate * o.secs);
    gcText = { client: p.client.output().slice(gcMark.client), server: p.server.output().slice(gcMark.server) };
    const g = { client: p.client.mark(), server: p.server.mark() };
    const ping = await rtt(pair, prober, 'tunnel', o.pings);
    say(`GC during the ${o.rate}/s probe (${delivered} delivered):`);
    for (const side of ['client', 'server'] as const) {
      const s = readTraceGc(gcText[side]);
      say(`  ${side}: ${s.scavenges} scavenges, ${s.markCompacts} full, ${s.pauseMs.toFixed(1)} ms paused (max ${s.maxPauseMs.toFixed(2)} ms), ` +
        `~${((s.freedMb * 1048576) / delivered).toFixed(0)} B of young garbage per datagram`);
    }
    say(`GC during a tunnel ping-pong (${ping}):`);
    for (const side of ['client', 'server'] as const) {
      const s = readTraceGc((side === 'client' ? p.client : p.server).output().slice(g[side]));
      say(`  ${side}: ${s.scavenges} scavenges, ${s.markCompacts} full, ${s.pauseMs.toFixed(1)} ms paused (max ${s.maxPauseMs.toFixed(2)} ms)`);
    }
  } finally {
    await stopPair(p);
  }
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const pid = Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(f)?.[1]);
    const side = roles[pid] ?? `pid ${pid}`;
    const jp = readCpuProfile(path.join(dir, f), from, to);
    const u = (x: number) => `${(x / delivered).toFixed(2).padStart(6)} us ${((100 * x) / jp.sampledUs).toFixed(1).padStart(5)} %`;
    say(`\nrsock-${side}: JS profile over the probe (${(jp.sampledUs / 1e6).toFixed(2)} s sampled; per delivered datagram, % of samples)`);
    say('  self time:');
    for (const [t, n] of jp.self.slice(0, 22)) say(`  ${u(t)}  ${n}`);
    say('  inclusive time:');
    for (const [t, n] of jp.total.slice(0, 30)) say(`  ${u(t)}  ${n}`);
  }
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('profile: needs root (network namespaces, raw sockets, perf)');
  const pair = new DirectPair({ logPrefix: 'rsock-profile' });
  pair.logPolicy = o.keep ? 'keep' : 'discard';
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { pair.destroySync(); process.exit(130); });
  try {
    await udpload.buildUdpload();
    await pair.up();
    await pair.exec('client', ['sysctl', '-qw', `net.ipv4.ip_local_reserved_ports=${CONF.sportBase}-${CONF.sportBase + 10999}`], { allowFail: true });
    await udpload.startServe(pair, `0.0.0.0:${CONF.targetPort}`, 600);
    const prober = new Prober(pair, new Results());
    const key = `profile-${pair.id}`;
    say(`# rsock profile: ${o.rate}/s x ${o.secs} s of 1200 B, ${o.pings} pings (logs: ${pair.logDir})`);
    if (o.ab) await passAb(pair, prober, o, key);
    if (!o.skip.has('pass1')) await pass1(pair, prober, o, key);
    if (!o.skip.has('jsprof')) await pass2(pair, prober, o, key);
    return 0;
  } finally {
    await pair.destroy();
  }
}

main().then((c) => process.exit(c), (e) => { console.error(e); process.exit(1); });
