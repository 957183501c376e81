// Where the latency goes, hop by hop (issue 10, item 1): a UDP ping-pong with one datagram in flight,
// direct, through rsock, and through udp2raw when RSOCK_BENCH_UDP2RAW names it, on the benchmark's
// veth path and its router path, with tcpdump on every interface the ping crosses. The kernel stamps
// each packet as it passes a tap (all namespaces share one clock), so the differences between taps
// are the time each program and each hop holds the datagram:
//
//   app → [client lo] → rsock-client → [client veth] → wire (router) → [server veth] → rsock-server
//       → [server lo] → target's echo → [server lo] → rsock-server → [server veth] → ... → [client lo] → app
//
//   flock /tmp/rsock-measure.lock node dist/bench/timeline.js [--pings=5000] [--rounds=2] [--path=veth|router|both] [--trace] [--pin[=one]]
//     [--rsock-flags='--busy-poll=100 ...'] [--keep]
//
// --pin: the client side (the pinging app and the tunnel's client) on CPU 0, the server side (the
// echoing target and the tunnel's server) on CPU 1, as on two one-core hosts: neither end can be woken
// onto the other's CPU, where it would wait for that end to finish (the kernel places a socket's
// reader on its waker's CPU when the waker looks about to sleep). --pin=one: every process on CPU 0,
// so that no wake-up needs an inter-processor interrupt (on a VM, an exit to the hypervisor).
// --trace: after each tunnel's taps, one more (untapped) ping-pong under `perf record` of the
// scheduler's and the system calls' tracepoints: each hop through a tunnel program split into its
// stages (bench/crossings.ts).
//
// The taps run in batched mode (tcpdump wakes once per ring block, not per packet); each still costs
// the kernel a copy per packet, the same for every program measured.
import * as path from 'path';
import { startCapture, stopCapture, Capture } from '../test/lib/capture';
import { DirectPair } from '../test/lib/direct-pair';
import { Topology } from '../test/lib/netns';
import type { NsSet } from '../test/lib/ns-set';
import { readPcapFrames } from '../test/lib/pcap';
import { exec, pinProcess, sleep } from '../test/lib/proc';
import { clockTicks, cpuTicks } from '../test/lib/procstat';
import type { BenchHost } from './host';
import { Instances } from './instances';
import { CONF } from './options';
import { Results } from './results';
import { allowTarget } from './router';
import { Crossing, crossingStats, fdKinds, parseCrossings, recordCrossings, STAGES } from './crossings';
import { matchPings, Point, stageStats, tapPackets } from './timeline-match';
import { startUdp2raw, stopUdp2raw, U2R_PORT, U2R_LUDP, UDP2RAW } from './udp2raw';
import * as udpload from './udpload';

interface Opts { pings: number; rounds: number; paths: Array<'veth' | 'router'>; keep: boolean; trace: boolean; pin: '' | 'split' | 'one'; flags: string[] }

function parse(argv: string[]): Opts {
  const o: Opts = { pings: 5000, rounds: 2, paths: ['veth', 'router'], keep: false, trace: false, pin: '', flags: [] };
  for (const a of argv) {
    const [k, v] = a.split('=');
    if (k === '--pings' && Number(v) >= 10) o.pings = Number(v);
    else if (k === '--rounds' && Number(v) >= 1) o.rounds = Number(v);
    else if (k === '--path' && ['veth', 'router', 'both'].includes(v)) o.paths = v === 'both' ? ['veth', 'router'] : [v as 'veth' | 'router'];
    else if (k === '--keep') o.keep = true;
    else if (k === '--trace') o.trace = true;
    else if (k === '--pin' && (v === undefined || v === 'one')) o.pin = v === 'one' ? 'one' : 'split';
    else if (k === '--rsock-flags' && v !== undefined) o.flags = a.slice(a.indexOf('=') + 1).split(' ').filter(Boolean);
    else throw new Error(`timeline: bad argument ${a} (--pings=N≥10, --rounds=N≥1, --path=veth|router|both, --trace, --pin[=one], --rsock-flags='FLAGS', --keep)`);
  }
  return o;
}

const PIN = { split: { client: '0', server: '1' }, one: { client: '0', server: '0' } };

/** --pin: every thread of the processes on their side's CPU. */
async function pin(o: Opts, pids: { client?: number; server?: number }): Promise<void> {
  if (!o.pin) return;
  for (const side of ['client', 'server'] as const) {
    const pid = pids[side];
    if (pid) await pinProcess(pid, PIN[o.pin][side]);
  }
}

const say = (s: string): void => { process.stdout.write(`${s}\n`); };

type Host = BenchHost & NsSet<string> & { up(): Promise<void>; dev: { client: string; server: string; routerClient?: string; routerServer?: string } };

/** What runs between the apps: its local port at the client, and the ports its wire packets use at the server. */
interface Carrier { name: string; ludp?: number; serverPorts: (p: number) => boolean; wireFilter: string }

/** One tcpdump: where, what, and which way a packet goes from its ports (up: client → server). */
interface Tap { role: string; dev: string; filter: string; up: (s: number, d: number) => boolean | undefined; name: string }

/** rsock's server ports in the timeline. */
const RSOCK_PORTS = { lo: 10001, hi: 10010 };

/** The taps of one path for one carrier, in the order the ping passes them, and the stage names between. */
function tapPlan(host: Host, c: Carrier): { taps: Tap[]; order: Array<[number, boolean]>; stages: string[] } {
  const wire = (s: number, d: number) => (c.serverPorts(d) ? true : c.serverPorts(s) ? false : undefined);
  const lo = (port: number) => (s: number, d: number) => (d === port ? true : s === port ? false : undefined);
  const taps: Tap[] = [];
  const tunnel = c.ludp !== undefined;
  if (tunnel) taps.push({ role: 'client', dev: 'lo', filter: `udp port ${c.ludp}`, up: lo(c.ludp!), name: 'client lo' });
  taps.push({ role: 'client', dev: host.dev.client, filter: c.wireFilter, up: wire, name: 'client veth' });
  if (host.dev.routerClient) {
    taps.push({ role: 'router', dev: host.dev.routerClient, filter: c.wireFilter, up: wire, name: 'router in' });
    taps.push({ role: 'router', dev: host.dev.routerServer!, filter: c.wireFilter, up: wire, name: 'router out' });
  }
  taps.push({ role: 'server', dev: host.dev.server, filter: c.wireFilter, up: wire, name: 'server veth' });
  if (tunnel) taps.push({ role: 'server', dev: 'lo', filter: `udp port ${CONF.targetPort}`, up: lo(CONF.targetPort), name: 'server lo' });
  // Up through every tap, then down back through them in reverse.
  const order: Array<[number, boolean]> = [...taps.map((_, i) => [i, true] as [number, boolean]), ...taps.map((_, i) => [taps.length - 1 - i, false] as [number, boolean])];
  const hop = (a: string, b: string): string => {
    if (a === b) return tunnel ? 'target app: echo (udpload)' : 'target app: echo, with its socket delivery';
    if (a === 'client lo' || b === 'client lo') return `${c.name}-client ${a === 'client lo' ? 'up' : 'down'} (wake, work, send)`;
    if (a === 'server lo' || b === 'server lo') return `${c.name}-server ${b === 'server lo' ? 'up' : 'down'} (wake, work, send)`;
    if (a.startsWith('router') && b.startsWith('router')) return 'router forwarding (conntrack, nft)';
    return `wire ${a} → ${b}`;
  };
  const names = order.map(([i]) => taps[i].name);
  return { taps, order, stages: names.slice(1).map((b, k) => hop(names[k], b)) };
}

interface Measured { rows: number[][]; unmatched: number; stages: string[]; rtt: udpload.PingResult[]; untapped: udpload.PingResult[]; cpu: string }

/** `procs`: the processes whose CPU time per untapped ping is reported (pid → label). */
async function measure(host: Host, c: Carrier, dst: string, o: Opts, procs: Map<number, string>): Promise<Measured> {
  const plan = tapPlan(host, c);
  const rows: number[][] = [];
  const rtt: udpload.PingResult[] = [];
  const untapped: udpload.PingResult[] = [];
  const cpu = [...procs.keys()].map(() => [] as number[]);
  let unmatched = 0;
  await udpload.ping(host, 'client', dst, 300, 0, 200, 10); // warm-up, untapped
  for (let round = 0; round < o.rounds; round++) {
    const t0 = [...procs.keys()].map((pid) => cpuTicks(pid) ?? NaN);
    untapped.push(await udpload.ping(host, 'client', dst, o.pings, 0, 200, 60)); // what the taps cost
    [...procs.keys()].forEach((pid, i) => cpu[i].push((((cpuTicks(pid) ?? NaN) - t0[i]) * 1e6) / clockTicks() / Math.max(1, untapped[untapped.length - 1].samples)));
    const caps: Capture[] = [];
    try {
      for (const [i, t] of plan.taps.entries()) {
        caps.push(await startCapture(host, t.role, t.dev, `tl-${c.name}-${round}-${i}`, { filter: t.filter, batched: true, nano: true, maxMs: 120_000 }));
      }
      rtt.push(await udpload.ping(host, 'client', dst, o.pings, 0, 200, 60));
      await sleep(1500); // every ring block retired, so written
    } finally {
      for (const cap of caps) {
        const st = await stopCapture(cap);
        if (st.droppedByKernel > 0) say(`  (a tap dropped ${st.droppedByKernel} packets: ${cap.file})`);
      }
    }
    const pkts = plan.taps.map((t, i) => tapPackets(readPcapFrames(caps[i].file), t.up));
    const points: Point[] = plan.order.map(([i, up]) => ({ name: `${plan.taps[i].name} ${up ? 'up' : 'down'}`, packets: pkts[i].filter((p) => p.up === up) }));
    const m = matchPings(points);
    rows.push(...m.times);
    unmatched += m.unmatched;
  }
  const cpuText = [...procs.values()].map((l, i) => `${l} ${cpu[i].map((x) => x.toFixed(1)).join(', ')} µs`).join('; ');
  return { rows, unmatched, stages: plan.stages, rtt, untapped, cpu: cpuText };
}

function table(title: string, m: Measured): void {
  const f = (x: number) => x.toFixed(1).padStart(7);
  const rt = (rs: udpload.PingResult[]) => rs.map((r) => `p50 ${r.p50us} p99 ${r.p99us} p99.9 ${r.p999us}`).join('; ');
  say(`\n${title}: ${m.rows.length} pings matched at every tap (${m.unmatched} not); µs`);
  say(`${'stage'.padEnd(52)} ${'p50'.padStart(7)} ${'p90'.padStart(7)} ${'p99'.padStart(7)} ${'p99.9'.padStart(7)} ${'mean'.padStart(7)} ${'slow1%'.padStart(7)}`);
  for (const x of stageStats(m.rows, m.stages)) say(`${x.name.padEnd(52)} ${f(x.p50)} ${f(x.p90)} ${f(x.p99)} ${f(x.p999)} ${f(x.mean)} ${f(x.slowMean)}`);
  say(`udpload's RTT per round, tapped: ${rt(m.rtt)}`);
  say(`udpload's RTT per round, untapped, just before: ${rt(m.untapped)}`);
  say(`CPU per untapped ping (/proc utime+stime, per round): ${m.cpu}`);
}

/**
 * --trace: an untapped ping-pong under `perf record` (bench/crossings.ts): each crossing of a datagram
 * through the tunnel's two programs, split into stages, grouped by the kind of socket it came in on.
 */
async function trace(host: Host, dst: string, o: Opts, name: string, pids: { client: number; server: number }): Promise<void> {
  if (!o.trace) return;
  const file = path.join(host.logDir, `trace-${name}.data`);
  const secs = 4;
  const png = await recordCrossings(file, [pids.client, pids.server], secs, () => udpload.ping(host, 'client', dst, o.pings, 0, 200, secs - 1));
  const kinds = new Map([[pids.client, fdKinds(pids.client)], [pids.server, fdKinds(pids.server)]]); // after: the flow's own socket exists
  const script = await exec(['perf', 'script', '-i', file, '--ns'], { allowFail: true, timeoutMs: 120_000 });
  const all = parseCrossings(script.stdout, new Set([pids.client, pids.server]));
  say(`perf record over ${png.samples} untapped pings (RTT p50 ${png.p50us} p99 ${png.p99us} µs): inside each crossing, µs (p50 / p90 / p99)`);
  const groups = new Map<string, Crossing[]>();
  for (const c of all) {
    const kind = kinds.get(c.tid)?.get(c.fd) ?? `fd ${c.fd}`;
    const key = `${name}-${c.tid === pids.client ? 'client' : 'server'}, from its ${kind}${/^(packet|raw|udp|tcp)$/.test(kind) ? ' socket' : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const keys = [...groups.keys()].filter((k) => groups.get(k)!.length >= png.samples / 10).sort();
  say(`${'stage'.padEnd(36)} ${keys.map((k) => k.padStart(34)).join(' ')}`);
  const stats = keys.map((k) => crossingStats(groups.get(k)!));
  STAGES.forEach((st, i) => say(`${st.padEnd(36)} ${stats.map((s) => `${s[i].p50.toFixed(1)} / ${s[i].p90.toFixed(1)} / ${s[i].p99.toFixed(1)}`.padStart(34)).join(' ')}`));
  say(`${'crossings'.padEnd(36)} ${keys.map((k) => String(groups.get(k)!.length).padStart(34)).join(' ')}`);
}

/** A tunnel's taps, table and --trace, its ends pinned first if asked. */
async function tunnel(host: Host, o: Opts, c: Carrier, ends: { client: { pid: number }; server: { pid: number } }, servePid: number): Promise<void> {
  const pids = { client: ends.client.pid, server: ends.server.pid };
  await pin(o, pids);
  const dst = `127.0.0.1:${c.ludp}`;
  table(c.name, await measure(host, c, dst, o, new Map([[pids.client, `${c.name}-client`], [pids.server, `${c.name}-server`], [servePid, 'target']])));
  await trace(host, dst, o, c.name, pids);
}

async function onPath(host: Host, o: Opts, r: Results): Promise<void> {
  await host.up();
  if (host instanceof Topology) await allowTarget(host, CONF.targetPort);
  const serve = await udpload.startServe(host, `0.0.0.0:${CONF.targetPort}`, 1200);
  await pin(o, { server: serve.pid });
  const direct: Carrier = { name: 'direct', serverPorts: (p) => p === CONF.targetPort, wireFilter: `udp port ${CONF.targetPort}` };
  table('direct UDP', await measure(host, direct, `${host.serverAddr}:${CONF.targetPort}`, o, new Map([[serve.pid, 'target']])));

  const { lo, hi } = RSOCK_PORTS;
  const inst = new Instances(host, r, `timeline-${host.id}`);
  const a = await inst.start('T', `${lo}-${hi}`, `127.0.0.1:${CONF.targetPort}`, CONF.ludp, o.flags);
  if (!a) throw new Error(`timeline: rsock did not start: ${inst.reason}`);
  try {
    await sleep(1000); // every connection up
    if (o.flags.length) say(`\nrsock runs with ${o.flags.join(' ')} at both ends`);
    await tunnel(host, o, { name: 'rsock', ludp: CONF.ludp, serverPorts: (p) => p >= lo && p <= hi, wireFilter: `tcp portrange ${lo}-${hi}` }, a, serve.pid);
  } finally {
    await inst.stop(a);
  }
  if (!UDP2RAW) return say('\n(udp2raw: set RSOCK_BENCH_UDP2RAW to its binary to measure it on the same taps)');
  const u = await startUdp2raw(host, r, 1);
  if (typeof u === 'string') return say(`\nudp2raw: ${u}`);
  try {
    await tunnel(host, o, { name: 'udp2raw', ludp: U2R_LUDP, serverPorts: (p) => p === U2R_PORT, wireFilter: `tcp port ${U2R_PORT}` }, u, serve.pid);
  } finally {
    await stopUdp2raw(u);
  }
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('timeline: needs root (network namespaces, raw sockets, tcpdump)');
  await udpload.buildUdpload();
  udpload.pinPing(o.pin ? PIN[o.pin].client : null);
  const r = new Results();
  for (const p of o.paths) {
    const host = (p === 'veth' ? new DirectPair({ logPrefix: 'rsock-timeline' }) : new Topology({ logPrefix: 'rsock-timeline' })) as unknown as Host;
    host.logPolicy = o.keep ? 'keep' : 'discard';
    const onSignal = () => { host.destroySync(); process.exit(130); };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    say(`\n# ${p} path: one ping in flight, ${o.rounds} × ${o.pings} pings per program (logs: ${host.logDir})`);
    try {
      await onPath(host, o, r);
    } finally {
      await host.destroy();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  return 0;
}

main().then((c) => process.exit(c), (e) => { console.error(e); process.exit(1); });
