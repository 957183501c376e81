// Packet capture and connection discovery for the wire tests: tcpdump on a namespace's interface,
// bounded in time and in packets and stopped by PID, and the tunnel's live 4-tuples as the router's
// conntrack holds them (client side before NAT, server side after it).
import * as path from 'path';
import { Role, Topology } from './netns';
import type { NsSet } from './ns-set';
import { Proc, sleep } from './proc';
import { PORT_MAX, PORT_MIN } from './rsock';

export interface Capture {
  proc: Proc;
  file: string;
  /** Hard bounds the capture was started with. */
  maxPackets: number; maxMs: number;
}

export interface CaptureStats { captured: number; received: number; droppedByKernel: number }

/**
 * Starts tcpdump in `role`'s namespace on `dev`, writing full packets to a pcap file in the test's log
 * directory. Bounded: it stops by itself after maxPackets (-c) or maxMs (timeout(1) sends SIGINT, on
 * which tcpdump flushes and writes its statistics). Resolves once tcpdump is listening, so nothing
 * sent afterwards is missed.
 *
 * `batched`: no --immediate-mode, so tcpdump wakes once per ring block (at most once a second) rather
 * than once per packet, and perturbs a latency measurement less; packets still count from the kernel's
 * timestamps, but only those of retired blocks are written, so wait over a second before stopping.
 * `nano`: nanosecond timestamps.
 */
export async function startCapture<R extends string = Role>(topo: NsSet<R>, role: R, dev: string, name: string,
  o: { filter?: string; maxPackets?: number; maxMs?: number; batched?: boolean; nano?: boolean } = {}): Promise<Capture> {
  const maxPackets = o.maxPackets ?? 200_000;
  const maxMs = o.maxMs ?? 60_000;
  const file = path.join(topo.logDir, `${name}.pcap`);
  // --immediate-mode: packets reach tcpdump at once (without it, the capture ring hands them over in
  // blocks, and those still in the ring when tcpdump is stopped are counted but never written);
  // -U: write each packet at once; -B: 16 MiB kernel buffer so a burst is not dropped; -n: no name
  // lookups (no traffic leaves the test).
  const mode = o.batched ? [] : ['--immediate-mode'];
  const precision = o.nano ? ['--time-stamp-precision=nano'] : [];
  const cmd = ['timeout', '-s', 'INT', `${Math.ceil(maxMs / 1000)}`, 'tcpdump', '-i', dev, '-n', ...mode, ...precision, '-U', '-B', '16384', '-s', '0',
    '-c', String(maxPackets), '-w', file, ...(o.filter ? [o.filter] : ['tcp'])];
  const proc = topo.spawn(role, cmd, { name: `tcpdump-${name}` });
  await proc.waitFor(/listening on/, 10_000);
  return { proc, file, maxPackets, maxMs };
}

/** Stops a capture (SIGINT to its PID: tcpdump flushes the file) and returns tcpdump's own counts. */
export async function stopCapture(c: Capture): Promise<CaptureStats> {
  // A moment for the last packets to be written; then timeout(1) passes SIGINT on to tcpdump, and
  // stop() falls back to SIGKILL if it does not exit.
  await sleep(200);
  await c.proc.stop(5000, 'SIGINT');
  const out = c.proc.output();
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return {
    captured: num(/(\d+) packets? captured/),
    received: num(/(\d+) packets? received by filter/),
    droppedByKernel: num(/(\d+) packets? dropped by kernel/),
  };
}

/** One tunnel connection as the router's conntrack sees it. */
export interface LiveTuple {
  /** Client side, before NAT: the client's address and port. */
  clientIp: string; clientPort: number;
  /** The server's address and port. */
  serverIp: string; serverPort: number;
  /** The address and port the server sees (after masquerade). */
  natIp: string; natPort: number;
  state: string;
}

/** ESTABLISHED TCP entries of the router's conntrack towards the tunnel's ports. */
export async function liveTuples(topo: Topology, portMin = PORT_MIN, portMax = PORT_MAX): Promise<LiveTuple[]> {
  const r = await topo.exec('router', ['conntrack', '-L', '-p', 'tcp'], { allowFail: true, timeoutMs: 10_000 });
  const res: LiveTuple[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^tcp\s+\d+\s+\d+\s+(\S+)\s+src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(line);
    if (!m) continue;
    const serverPort = Number(m[5]);
    if (m[1] !== 'ESTABLISHED' || serverPort < portMin || serverPort > portMax) continue;
    res.push({ state: m[1], clientIp: m[2], serverIp: m[3], clientPort: Number(m[4]), serverPort, natIp: m[7], natPort: Number(m[9]) });
  }
  return res;
}

/** MAC address of an interface inside a namespace. */
export async function macOf(topo: Topology, role: Role, dev: string): Promise<string> {
  const r = await topo.exec(role, ['ip', '-j', 'link', 'show', dev]);
  const a = (JSON.parse(r.stdout) as Array<{ address: string }>)[0]?.address;
  if (!a) throw new Error(`no MAC address for ${dev} in ${role}`);
  return a;
}
