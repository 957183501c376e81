// The measurements of the benchmark's first session that are not rate searches: memory, header
// bytes (tcpdump), CPU per datagram and memory with 10k live flows.
import { PAIR_ADDR } from '../test/lib/direct-pair';
import { pollUntil, sleep } from '../test/lib/proc';
import { clockTicks, cpuTicks, statusMiB } from '../test/lib/procstat';
import type { BenchHost } from './host';
import { Instance, Instances } from './instances';
import { CONF } from './options';
import { Results } from './results';
import { Prober, Route } from './search';
import * as udpload from './udpload';

export class Measure {
  constructor(private readonly pair: BenchHost, private readonly r: Results, private readonly prober: Prober,
    private readonly inst: Instances) {}

  idleRss(a: Instance): void {
    const c = statusMiB(a.client.pid, 'VmRSS');
    const s = statusMiB(a.server.pid, 'VmRSS');
    this.r.res('rss_idle_client_mb', c);
    this.r.res('rss_idle_server_mb', s);
    this.r.say(`  idle RSS: client ${c} MiB, server ${s} MiB`);
  }

  /** tcpdump -v on the server's veth during a short probe: the smallest TCP payload carrying one 1200 B datagram (veth path). */
  async headerBytes(key = 'header_bytes'): Promise<void> {
    const { pair, r } = this;
    const filter = `tcp and src host ${PAIR_ADDR.client} and dst portrange 10001-10010 and greater 1200`;
    const td = pair.spawn('server', ['timeout', '8', 'tcpdump', '-i', pair.dev.server, '-nn', '-v', '-l', '-c', '20', filter], { name: 'tcpdump' });
    await td.waitFor(/listening/, 3000).catch(() => undefined);
    await this.prober.probe('tunnel', 1000, 0.5, 1);
    await sleep(300);
    await td.stop(500);
    // pairs of lines: "IP (... proto TCP ... length L_ip)" then "a > b: Flags [...], ... length L_tcp"
    let ipl = 0;
    let best = 0;
    let opt = 0;
    for (const line of td.output().split('\n')) {
      if (/proto TCP/.test(line)) {
        const m = /length (\d+)\)/.exec(line);
        ipl = m ? Number(m[1]) : 0;
        continue;
      }
      if (/Flags \[/.test(line) && ipl > 0) {
        const tl = Number(line.split('length ').pop());
        if (tl >= 1200 && tl < 2400 && (best === 0 || tl < best)) { best = tl; opt = ipl - 20 - 20 - tl; }
        ipl = 0;
      }
    }
    if (best) {
      r.res(key, best - 1200);
      r.note(`${key}.tcp_options_bytes`, opt);
      r.say(`  rsock header (${key}): ${best - 1200} B per datagram (+ ${opt} B of TCP options)`);
    } else {
      r.missing(key, 'no tunnel segment of 1200+ B captured');
    }
  }

  /** utime+stime of both rsock processes over a paced 20k/s x 5 s probe, per delivered datagram; pre: the path's key prefix. */
  async cpu(a: Instance, pre = '', route: Route = 'tunnel', flows = 1): Promise<number | undefined> {
    const { pair, r } = this;
    const names = ['tx_bytes', 'tx_packets', 'rx_bytes', 'rx_packets'] as const;
    const c0 = cpuTicks(a.client.pid);
    const s0 = cpuTicks(a.server.pid);
    const d0 = await pair.devStats('client', pair.dev.client, names);
    const p = await this.prober.probe(route, 20000, 5, flows);
    const c1 = cpuTicks(a.client.pid);
    const s1 = cpuTicks(a.server.pid);
    const d1 = await pair.devStats('client', pair.dev.client, names);
    const hz = clockTicks();
    const delivered = Math.trunc(p.rate * 5);
    if (c0 === undefined || c1 === undefined || s0 === undefined || s1 === undefined || delivered <= 0) {
      r.missing(`${pre}cpu_us_per_dgram`, 'nothing delivered at 20k/s');
      return undefined;
    }
    const us = (ticks: number) => (ticks * 1e6) / hz / delivered;
    r.res(`${pre}cpu_us_per_dgram`, us(c1 - c0 + (s1 - s0)));
    r.note(`${pre}cpu.client_us`, us(c1 - c0));
    r.note(`${pre}cpu.server_us`, us(s1 - s0));
    r.note(`${pre}cpu.client_core_pct`, ((c1 - c0) * 100) / hz / 5);
    r.note(`${pre}cpu.server_core_pct`, ((s1 - s0) * 100) / hz / 5);
    r.note(`${pre}cpu.delivered`, delivered);
    r.note(`${pre}cpu.delivered_pct`, (delivered * 100) / 100000);
    // everything on the wire, both directions (keepalives, ACKs included), per delivered datagram
    // (on the veth path instance B is idle meanwhile: its keepalives are counted too, a few per second)
    r.note(`${pre}wire.bytes_per_dgram`, (d1.tx_bytes - d0.tx_bytes + (d1.rx_bytes - d0.rx_bytes)) / delivered);
    r.note(`${pre}wire.packets_per_dgram`, (d1.tx_packets - d0.tx_packets + (d1.rx_packets - d0.rx_packets)) / delivered);
    r.say(`  CPU ${us(c1 - c0 + (s1 - s0)).toFixed(1)} us/datagram (${delivered} delivered)`);
    return us(c1 - c0 + (s1 - s0));
  }

  /** The highest VmRSS sampled each second for 7 s while 10,000 app flows each send a datagram a second (instance B). */
  async rss10k(b: Instance): Promise<void> {
    const { pair, r } = this;
    const hold = udpload.startHold(pair, `127.0.0.1:${CONF.ludp2}`, 10000, CONF.sportBase, 9, 7);
    await hold.waitFor(/holding=/, 5000).catch(() => undefined);
    let mc = 0;
    let ms = 0;
    for (let i = 0; i < 7; i++) {
      await sleep(1000);
      mc = Math.max(mc, statusMiB(b.client.pid, 'VmRSS') ?? 0);
      ms = Math.max(ms, statusMiB(b.server.pid, 'VmRSS') ?? 0);
    }
    await hold.stop(1000);
    const q = await udpload.query(pair, `127.0.0.1:${CONF.targetPort}`, 7);
    r.note('rss_10k.flows_seen', q.flows);
    if (this.inst.ok(b) && mc > 0) {
      r.res('rss_10k_client_mb', mc);
      r.res('rss_10k_server_mb', ms);
      r.say(`  RSS at 10k flows: client ${mc} MiB, server ${ms} MiB (${q.flows} flows reached the target)`);
    } else {
      for (const k of ['rss_10k_client_mb', 'rss_10k_server_mb']) r.missing(k, 'rsock died while holding 10k flows');
    }
  }

  /** Waits (bounded) until a TCP listener is up in the client ns. */
  async listening(port: number, ms: number): Promise<boolean> {
    return !!(await pollUntil(() => this.pair.tcpListening('client', port), ms, 100));
  }
}
