// rsock with --busy-poll beside the default figures on a path: what the flag buys in round-trip time
// and what it costs in CPU per datagram, measured in the same run as the default build's. Its own
// instance (ports 10021-10030, its own --ludp) so that the default instances' figures stay the default's.
import { sleep } from '../test/lib/proc';
import type { Instances } from './instances';
import type { Measure } from './measure';
import { CONF } from './options';
import type { Results } from './results';
import type { Prober, Route } from './search';

export const BUSY_POLL_US = 100;
export const BUSY_LUDP = 30006;
const ROUTE: Route = `tunnel:${BUSY_LUDP}`;

export function busyPollKeys(pre: string, smoke: boolean): string[] {
  const rtt = ['rtt', 'rtt_paced'].flatMap((k) => ['p50', 'p99', 'p999'].map((q) => `${pre}${k}_busypoll_${q}_ms`));
  return smoke ? rtt : [...rtt, `${pre}busypoll_cpu_us_per_dgram`];
}

/** RTT (one in flight, paced) and, unless smoke, CPU per datagram at 20k/s through rsock --busy-poll. */
export async function busyPollFigures(r: Results, prober: Prober, measure: Measure, inst: Instances, pre: string, smoke: boolean): Promise<void> {
  const flag = `--busy-poll=${BUSY_POLL_US}`;
  r.say(`${pre ? 'router path' : 'veth path'}: starting rsock with ${flag} (ports 10021-10030, ludp :${BUSY_LUDP})`);
  const i = await inst.start('BP', '10021-10030', `127.0.0.1:${CONF.targetPort}`, BUSY_LUDP, [flag]);
  if (!i) {
    for (const k of busyPollKeys(pre, smoke)) r.missing(k, `rsock ${flag}: ${inst.reason}`);
    return;
  }
  await sleep(1000); // every connection up
  await prober.latency(ROUTE, pre, smoke, 'busypoll');
  if (!smoke) await measure.cpu(i, `${pre}busypoll_`, ROUTE);
  if (!inst.ok(i)) r.note('rsock_note', 'an rsock process exited during the run (see its log)');
  await inst.stop(i);
}
