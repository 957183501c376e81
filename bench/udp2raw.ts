// Optional comparison: udp2raw (github.com/wangyu-/udp2raw; faketcp, no crypto, no auth) on the
// same paths as rsock, when RSOCK_BENCH_UDP2RAW names its binary. It is not packaged and never part
// of this repository: build it elsewhere. Its figures are named like rsock's with "udp2raw" for
// "tunnel" (rtt_udp2raw_*, udp2raw_rate, udp2raw_cpu_us_per_dgram; rtr_ in front on the router path),
// compared with the same direct baseline as rsock's, and judged against no target.
import * as fs from 'fs';
import { sleep } from '../test/lib/proc';
import type { BenchHost } from './host';
import { Instance } from './instances';
import { Measure } from './measure';
import { CONF } from './options';
import { Results } from './results';
import { Prober, Route, Track } from './search';
import * as udpload from './udpload';

export const UDP2RAW = process.env.RSOCK_BENCH_UDP2RAW || '';
export const U2R_PORT = 4096;
export const U2R_LUDP = 30004;
export const U2R_ROUTE: Route = `tunnel:${U2R_LUDP}`;

/** The figures a path gets from udp2raw (for "n/a" when it does not start). */
export function udp2rawKeys(pre: string): string[] {
  const rtt = ['rtt', 'rtt_paced'].flatMap((k) => ['p50', 'p99', 'p999'].map((q) => `${pre}${k}_udp2raw_${q}_ms`));
  return [`${pre}udp2raw_rate`, ...rtt, `${pre}udp2raw_cpu_us_per_dgram`];
}

/** Starts udp2raw server and client (iptables rules with -a, inside the namespaces); ready once a ping gets through. */
export async function startUdp2raw(host: BenchHost, r: Results, n: number): Promise<Instance | string> {
  if (!fs.existsSync(UDP2RAW)) return `RSOCK_BENCH_UDP2RAW=${UDP2RAW}: no such file`;
  const common = ['-k', `u2r-${host.id}`, '--raw-mode', 'faketcp', '--cipher-mode', 'none', '--auth-mode', 'none', '-a'];
  const sArgs = [UDP2RAW, '-s', '-l', `0.0.0.0:${U2R_PORT}`, '-r', `127.0.0.1:${CONF.targetPort}`, ...common];
  const cArgs = [UDP2RAW, '-c', '-l', `127.0.0.1:${U2R_LUDP}`, '-r', `${host.serverAddr}:${U2R_PORT}`, ...common];
  r.commands.push(['udp2raw', ...sArgs.slice(1)].join(' ').replace(/-k \S+/, '-k K'), ['udp2raw', ...cArgs.slice(1)].join(' ').replace(/-k \S+/, '-k K'));
  const server = host.spawn('server', sArgs, { name: `udp2raw-server-${n}` });
  await sleep(300);
  const client = host.spawn('client', cArgs, { name: `udp2raw-client-${n}` });
  const u: Instance = { name: 'udp2raw', n, server, client };
  for (let i = 0; i < 20; i++) {
    if (!server.running || !client.running) break;
    const p = await udpload.ping(host, 'client', `127.0.0.1:${U2R_LUDP}`, 3, 0, 300, 3);
    if (p.samples > 0) return u;
    await sleep(500);
  }
  const why = `udp2raw not passing datagrams within 15 s (${server.running ? '' : 'server exited; '}${client.running ? '' : 'client exited; '}see its log)`;
  await stopUdp2raw(u);
  return why;
}

export async function stopUdp2raw(u: Instance): Promise<void> {
  await u.client.stop(2000);
  await u.server.stop(2000);
}

/** RTT and CPU through udp2raw on a path; returns its rate track for the path's interleaved search, if it runs. */
export async function udp2rawFigures(host: BenchHost, r: Results, prober: Prober, measure: Measure, pre: string, smoke: boolean,
  n: number): Promise<{ u?: Instance; track?: Track }> {
  if (!UDP2RAW) return {};
  r.say(`${pre ? 'router path' : 'veth path'}: starting udp2raw (faketcp, no crypto; ludp :${U2R_LUDP})`);
  const u = await startUdp2raw(host, r, n);
  if (typeof u === 'string') {
    for (const k of udp2rawKeys(pre)) r.missing(k, u);
    return {};
  }
  await prober.latency(U2R_ROUTE, pre, smoke, 'udp2raw');
  if (!smoke) await measure.cpu(u, `${pre}udp2raw_`, U2R_ROUTE);
  return { u, track: { key: `${pre}udp2raw_rate`, route: U2R_ROUTE, flows: 1 } };
}
