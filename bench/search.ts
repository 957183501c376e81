// Rate probes, the interleaved rate search and the RTT measurement of the benchmark.
import { sleep } from '../test/lib/proc';
import type { BenchHost } from './host';
import { CONF } from './options';
import { Results } from './results';
import * as udpload from './udpload';

/** 'direct': straight to the target; 'tunnel': rsock's ludp 30000; 'tunnel:PORT': another ludp. */
export type Route = 'direct' | 'tunnel' | `tunnel:${number}`;

export interface Probe { ok: boolean; rate: number; sentRate: number; flows: number }

/** One figure of a rate search: datagrams of `size` bytes (default 1200) over `flows` flows on `route`. */
export interface Track { key: string; route: Route; flows: number; size?: number }

export class Prober {
  private run = Math.floor(Math.random() * 32768) * 1000;

  /** path: how this prober's lines are told apart in the probe log ('' for the veth path). */
  constructor(private readonly pair: BenchHost, private readonly r: Results, private readonly path = '') {}

  private target(): string { return `127.0.0.1:${CONF.targetPort}`; }

  dst(route: Route): string {
    if (route === 'direct') return `${this.pair.serverAddr}:${CONF.targetPort}`;
    if (route.startsWith('tunnel:')) return `127.0.0.1:${route.slice('tunnel:'.length)}`;
    return `127.0.0.1:${CONF.ludp}`;
  }

  /**
   * One probe: `rate` datagrams/s (0: flood) for `secs` over `flows` flows, then the target's count.
   * ok: at least 99 % of the offered datagrams (rate x duration) arrived, duplicates not counted.
   */
  async probe(route: Route, rate: number, secs: number, flows: number, size = 1200): Promise<Probe> {
    const run = ++this.run;
    const s = await udpload.send(this.pair, this.dst(route), rate, secs, flows, CONF.sportBase, run, size);
    await sleep(400); // let queues drain
    const q = await udpload.query(this.pair, this.target(), run);
    const elText = /elapsed=([0-9.]*)/.exec(s.out)?.[1] ?? String(secs);
    const el = elText.startsWith('0') || !(s.elapsed > 0) ? secs : s.elapsed;
    const p: Probe = { ok: s.target > 0 && q.uniq >= 0.99 * s.target, rate: q.uniq / el, sentRate: s.sent / el, flows: q.flows };
    this.r.probes.push([this.r.elapsed(), `${this.path}${route}`, `rate=${rate}`, `flows=${flows}`, `size=${size}`, `sent=${s.sent}`, `target=${s.target}`,
      `uniq=${q.uniq}`, `elapsed=${elText}`, `ok=${p.ok ? 1 : 0}`, q.line.replace(/\n/g, ' ')].join('\t'));
    return p;
  }

  /**
   * For each track (key, route, flows), the highest offered rate that still delivers >= 99 %
   * (figure `key`). The tracks' probes are interleaved, so that they share the machine's conditions
   * (it is shared and noisy): the ratios between tracks are fairer than separate searches would
   * give. Per track: a flood (sender at full speed) bounds the search, then up to `steps` paced
   * probes bisect.
   */
  async search(smoke: boolean, tracks: Track[]): Promise<void> {
    const secs = smoke ? 1 : 2;
    const steps = smoke ? 1 : 7;
    const r = this.r;
    const st = tracks.map(() => ({ lo: 0, hi: 0, rr: 0, best: 0, done: 0, flood: 0, seen: 0 }));
    for (const [i, t] of tracks.entries()) {
      const p = await this.probe(t.route, 0, secs, t.flows, t.size);
      const s = st[i];
      s.flood = p.rate;
      s.seen = p.flows;
      r.note(`${t.key}.flood`, Math.trunc(p.rate));
      r.note(`${t.key}.flood_offered`, Math.trunc(p.sentRate));
      if (p.rate < 1) {
        r.missing(t.key, `no datagram arrived (${t.route}, ${t.flows} flows)`);
        r.say(`  ${t.key}: nothing delivered`);
        s.done = 2;
      } else if (p.ok) {
        r.res(t.key, Math.trunc(p.rate));
        r.note(`${t.key}.limit`, 'sender');
        r.say(`  ${t.key}: flood fully delivered, sender-limited at ${Math.trunc(p.rate)}/s`);
        s.done = 2;
      } else {
        s.hi = p.sentRate;
        s.rr = Math.trunc(p.rate * 0.95);
      }
      await sleep(300);
    }
    for (let step = 0; step < steps; step++) {
      let any = false;
      for (const [i, t] of tracks.entries()) {
        const s = st[i];
        if (s.done !== 0) continue;
        any = true;
        const p = await this.probe(t.route, s.rr, secs, t.flows, t.size);
        if (p.ok) {
          s.lo = s.rr;
          s.seen = p.flows;
          if (p.rate > s.best) s.best = p.rate;
        } else {
          s.hi = s.rr;
        }
        // below the first pass: step down; wide bracket: geometric middle; narrow: arithmetic middle
        if (s.lo === 0) s.rr = Math.trunc(s.rr * 0.6);
        else if (s.hi > 2 * s.lo) s.rr = Math.trunc(Math.sqrt(s.lo * s.hi));
        else s.rr = Math.trunc((s.lo + s.hi) / 2);
        if (s.lo > 0 && (s.hi - s.lo) / s.hi < 0.04) s.done = 1;
        if (s.rr < 100) s.done = 1;
        await sleep(300);
      }
      if (!any) break;
    }
    for (const [i, t] of tracks.entries()) {
      const s = st[i];
      if (s.done === 2) continue;
      if (s.best > 0) {
        r.res(t.key, Math.trunc(s.best));
        r.note(`${t.key}.flows_seen`, s.seen);
        r.say(`  ${t.key}: ${Math.trunc(s.best)}/s (flood delivered ${Math.trunc(s.flood)}/s)`);
      } else {
        r.res(t.key, Math.trunc(s.flood));
        r.note(`${t.key}.limit`, 'loss ≥ 1 % at every probed rate, so the figure is what the flood delivered');
        r.say(`  ${t.key}: >= 1 % loss at every rate; flood delivered ${Math.trunc(s.flood)}/s`);
      }
    }
  }

  /**
   * RTT with one datagram in flight (figures `${pre}rtt_${name}_*`), then paced at CONF.pacedRate/s
   * (`${pre}rtt_paced_${name}_*`); name: the route's name in the keys ('direct', 'tunnel', 'udp2raw').
   */
  async latency(route: Route, pre: string, smoke: boolean, name: string = route): Promise<boolean> {
    const one = await this.rtt(route, smoke ? 200 : 10000, `${pre}rtt_${name}`, smoke);
    const paced = await this.rtt(route, smoke ? 400 : 10000, `${pre}rtt_paced_${name}`, smoke, CONF.pacedRate);
    return one && paced;
  }

  /**
   * UDP ping-pong from the client ns, direct or through rsock: figures `${pre}_p50_ms`, `_p99_ms`,
   * `_p999_ms`. rate 0: one datagram in flight; rate R: paced at R/s (udpload ping --rate).
   */
  async rtt(route: Route, count: number, pre: string, smoke: boolean, rate = 0): Promise<boolean> {
    const r = this.r;
    const warmup = rate > 0 ? Math.ceil(rate / 5) : smoke ? 20 : 200;
    const maxSecs = rate > 0 ? Math.ceil((count + warmup) / rate) + 5 : 30;
    const p = await udpload.ping(this.pair, 'client', this.dst(route), count, warmup, rate > 0 ? 500 : 200, maxSecs, rate);
    const keys = ['p50', 'p99', 'p999'].map((q) => `${pre}_${q}_ms`);
    const what = `${this.path}${route}${rate > 0 ? ` at ${rate}/s` : ''}`;
    if (p.p50us === undefined || p.samples === 0) {
      const why = p.ok ? `no reply to any ping (${what})` : `ping failed (${what}): ${p.out.slice(0, 120)}`;
      for (const k of keys) r.missing(k, why);
      r.say(`  rtt ${what}: no reply`);
      return false;
    }
    [p.p50us, p.p99us, p.p999us].forEach((us, i) => r.res(keys[i], (us ?? NaN) / 1000));
    r.note(`${pre}.samples`, p.samples);
    r.note(`${pre}.lost`, p.lost);
    r.say(`  rtt ${what}: p50 ${p.p50us} us, p99 ${p.p99us} us, p99.9 ${p.p999us} us (${p.samples} samples, ${p.lost} lost)`);
    return true;
  }
}
