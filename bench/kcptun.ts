// kcptun goodput: one kcptun-client straight to kcptun-server over UDP (local TCP port 12948), one
// through rsock (port 12949); iperf3 runs alternate between them, ROUNDS rounds of both
// directions, and each figure is the median of its rounds: single 3-second runs swing by ±20 % on a
// shared VM, and two rounds' mean let one bad run turn the ratio (BENCHMARKS.md, cut 6).
// On both paths: `pre` is the path's prefix of the figures ('' veth, rtr_ router).
import { sleep } from '../test/lib/proc';
import type { BenchHost } from './host';
import { Instances } from './instances';
import { Measure } from './measure';
import { CONF } from './options';
import { Results } from './results';
import { median } from './stats';

const ROUNDS = 4;
const SECS = 3;
/** The figures, for a path's prefix. */
export const kcptunKeys = (pre: string) => ['direct_up', 'direct_down', 'tunnel_up', 'tunnel_down'].map((k) => `${pre}kcp_${k}_mbps`);

type KRoute = 'direct' | 'tunnel';

/** Mbit/s received, from iperf3 -J output; or why there is none. */
export function iperfMbps(json: string): number | string {
  try {
    const j = JSON.parse(json) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    const v = j.end?.sum_received?.bits_per_second;
    if (v !== undefined && v > 0) return v / 1e6;
    return j.error ?? 'no result';
  } catch {
    return 'unreadable iperf3 output';
  }
}

export async function kcptunGoodput(pair: BenchHost, r: Results, inst: Instances, measure: Measure, have: (cmd: string) => boolean, pre = ''): Promise<void> {
  if (!have('kcptun-server') || !have('kcptun-client') || !have('iperf3')) {
    for (const k of kcptunKeys(pre)) r.missing(k, 'kcptun or iperf3 not installed');
    return;
  }
  const args = ['--crypt', 'none', '--nocomp', '--mtu', '1350', '--sndwnd', '2048', '--rcvwnd', '2048', '--mode', 'fast',
    '--datashard', '0', '--parityshard', '0', '--quiet', '--key', `kcp-${pair.id}`];
  pair.spawn('server', ['iperf3', '-s', '-B', '127.0.0.1', '-p', String(CONF.iperfPort)], { name: 'iperf3-server' });
  pair.spawn('server', ['kcptun-server', '-l', `:${CONF.kcpPort}`, '-t', `127.0.0.1:${CONF.iperfPort}`, ...args], { name: 'kcps' });
  const routes: KRoute[] = ['direct'];
  r.say('kcptun: starting rsock K (ports 10001-10010, target kcptun-server)');
  const k = await inst.start('K', '10001-10010', `127.0.0.1:${CONF.kcpPort}`, CONF.ludp);
  if (k) routes.push('tunnel');
  else for (const key of kcptunKeys(pre).slice(2)) r.missing(key, inst.reason);
  const lport = (route: KRoute) => (route === 'direct' ? CONF.kcpLocalDirect : CONF.kcpLocalTunnel);
  for (const route of routes) {
    const remote = route === 'direct' ? `${pair.serverAddr}:${CONF.kcpPort}` : `127.0.0.1:${CONF.ludp}`;
    pair.spawn('client', ['kcptun-client', '-l', `127.0.0.1:${lport(route)}`, '-r', remote, ...args], { name: `kcpc-${route}` });
    if (!(await measure.listening(lport(route), 3000))) r.say(`  kcptun-client (${route}) has no listener`);
  }
  await sleep(1000);
  r.say(`${pre ? 'router path, ' : ''}kcptun goodput, runs alternating: ${routes.join(' ')}`);
  const vals: Record<string, number[]> = {};
  const why: Record<string, string> = {};
  for (let round = 1; round <= ROUNDS; round++) {
    for (const dir of ['up', 'down'] as const) {
      for (const route of routes) {
        const res = await pair.exec('client', ['iperf3', '-c', '127.0.0.1', '-p', String(lport(route)), '-t', String(SECS), '-O', '1', '-J',
          '--connect-timeout', '3000', ...(dir === 'down' ? ['-R'] : [])], { allowFail: true, timeoutMs: (SECS + 15) * 1000 })
          .catch((e: Error) => ({ stdout: '', stderr: e.message }));
        const v = iperfMbps(res.stdout || res.stderr);
        const key = `${route}.${dir}`;
        if (typeof v === 'number') {
          (vals[key] ??= []).push(v);
          r.say(`  kcptun ${route} ${dir} (round ${round}): ${Math.trunc(v)} Mbit/s`);
        } else {
          why[key] = `iperf3 through kcptun (${route}): ${v.slice(0, 100)}`;
          r.say(`  kcptun ${route} ${dir} (round ${round}): n/a`);
        }
        await sleep(300);
      }
    }
  }
  for (const route of routes) {
    for (const dir of ['up', 'down']) {
      const v = vals[`${route}.${dir}`];
      if (v?.length) {
        r.res(`${pre}kcp_${route}_${dir}_mbps`, median(v));
        r.note(`${pre}kcp_${route}_${dir}.rounds`, v.map((x) => String(Math.round(x * 1000) / 1000)).join(' '));
      } else {
        r.missing(`${pre}kcp_${route}_${dir}_mbps`, why[`${route}.${dir}`] ?? 'no result');
      }
    }
  }
  if (k) await inst.stop(k);
}
