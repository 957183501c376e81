// The router path of the benchmark: the integration tests' three-namespace Topology (client ns →
// router ns with strict conntrack, ct state invalid drop, masquerade → server ns; veth, MTU 1500).
// Direct UDP crosses the same router as the baseline, so the router forwards the target's port (it
// drops every other UDP datagram, as in the tests); rsock's fake TCP meets the rules unchanged.
// Figures carry the prefix rtr_; each is compared with the direct figure of the same path.
import { NFT, Topology } from '../test/lib/netns';
import { sleep } from '../test/lib/proc';
import { busyPollFigures } from './busy-poll';
import { Instances } from './instances';
import { kcptunGoodput, kcptunKeys } from './kcptun';
import { Measure } from './measure';
import { CONF, Options } from './options';
import { Results } from './results';
import { Prober, Track } from './search';
import { stopUdp2raw, udp2rawFigures } from './udp2raw';
import * as udpload from './udpload';

export const PRE = 'rtr_';

/** Every figure of the router path, for "n/a" when the path cannot be measured. */
export function routerKeys(smoke: boolean): string[] {
  const rtt = ['rtt', 'rtt_paced'].flatMap((k) => ['direct', 'tunnel'].flatMap((w) => ['p50', 'p99', 'p999'].map((q) => `${PRE}${k}_${w}_${q}_ms`)));
  return [`${PRE}direct_rate`, `${PRE}tunnel_rate`, ...rtt, ...(smoke ? [] : [`${PRE}cpu_us_per_dgram`, ...kcptunKeys(PRE)])];
}

/** Lets the target's UDP port through the router, just before its rule that drops all UDP. */
export async function allowTarget(topo: Topology, port: number): Promise<void> {
  const list = await topo.exec('router', ['nft', '-a', 'list', 'chain', NFT.family, NFT.table, NFT.fwd]);
  const h = /udp_drops.*# handle (\d+)/.exec(list.stdout)?.[1];
  if (!h) throw new Error(`router: no UDP drop rule in ${NFT.fwd}:\n${list.stdout}`);
  for (const rule of [`udp dport ${port} accept`, `udp sport ${port} accept`]) {
    await topo.exec('router', ['nft', `insert rule ${NFT.family} ${NFT.table} ${NFT.fwd} position ${h} ${rule}`]);
  }
}

export async function routerPath(o: Options, r: Results, topo: Topology, have: (cmd: string) => boolean): Promise<void> {
  const keys = routerKeys(o.smoke);
  r.say(`router path: namespaces ${Object.values(topo.ns).join(' / ')}, logs in ${topo.logDir}`);
  await topo.up();
  await allowTarget(topo, CONF.targetPort);
  await allowTarget(topo, CONF.kcpPort); // kcptun over plain UDP, the kcptun baseline
  await topo.exec('client', ['sysctl', '-qw', `net.ipv4.ip_local_reserved_ports=${CONF.sportBase}-${CONF.sportBase + 10999}`], { allowFail: true });
  await udpload.startServe(topo, `0.0.0.0:${CONF.targetPort}`, 900);
  const reach = await udpload.ping(topo, 'client', `${topo.serverAddr}:${CONF.targetPort}`, 3, 0, 300, 3);
  if (reach.samples === 0) {
    for (const k of keys) r.missing(k, `router path: ${topo.serverAddr}:${CONF.targetPort} unreachable through the router`);
    return;
  }
  const prober = new Prober(topo, r, 'rtr:');
  const inst = new Instances(topo, r, `bench-${topo.id}`, 100);
  const measure = new Measure(topo, r, prober, inst);
  r.say('router path, direct: RTT (one in flight, then paced)');
  await prober.latency('direct', PRE, o.smoke);
  r.say(`router path: starting rsock R (ports 10001-10010, ludp :${CONF.ludp})`);
  const a = await inst.start('R', '10001-10010', `127.0.0.1:${CONF.targetPort}`, CONF.ludp);
  if (!a) {
    for (const k of keys.filter((x) => x.includes('tunnel') || x.includes('cpu'))) r.missing(k, `router path: ${inst.reason}`);
  } else {
    await sleep(1000); // let every connection come up
    r.say('router path, tunnel: RTT (one in flight, then paced)');
    await prober.latency('tunnel', PRE, o.smoke);
    if (!o.smoke) {
      r.say('router path, tunnel: CPU per datagram at 20k/s for 5 s');
      await measure.cpu(a, PRE);
    }
  }
  if (a) await busyPollFigures(r, prober, measure, inst, PRE, o.smoke);
  const u2r = await udp2rawFigures(topo, r, prober, measure, PRE, o.smoke, 150);
  const tracks: Track[] = [{ key: `${PRE}direct_rate`, route: 'direct', flows: 1 }];
  if (a) tracks.push({ key: `${PRE}tunnel_rate`, route: 'tunnel', flows: 1 });
  if (u2r.track) tracks.push(u2r.track);
  r.say(`router path, datagrams/s, probes interleaved: ${tracks.map((t) => t.key).join(' ')}`);
  await prober.search(o.smoke, tracks);
  if (u2r.u) await stopUdp2raw(u2r.u);
  const c = await topo.readNftCounters().catch(() => undefined);
  if (c) r.note(`${PRE}invalid_drops`, c.invalid_drops.packets);
  if (a) {
    if (!inst.ok(a)) r.note('rsock_note', 'an rsock process exited during the run (see its log)');
    await inst.counters(a);
    await inst.stop(a);
  }
  // After R has stopped: kcptun's rsock instance takes the same ports.
  if (!o.smoke) await kcptunGoodput(topo, r, inst, measure, have, PRE);
}
