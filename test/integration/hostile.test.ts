// Hostile segments at the server's ports: hping3 sends segments with random payload and ACK, PSH,
// FIN, RST flag combinations, from the router namespace (straight at the server) and from the client
// namespace (through NAT and the strict firewall). Afterwards the server is alive, the tunnel works,
// and the server namespace sent no segment back to the hping3 source (counted on the router before
// conntrack and NAT, so nothing can hide a reply).
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { ADDR, NFT, Topology } from '../lib/netns';
import { Proc } from '../lib/proc';
import { PORT_MAX, PORT_MIN, startTunnel } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

/** Source ports of the hping3 runs: from the router, and from the client (kept by masquerade). */
const SPORT_ROUTER = 5000;
const SPORT_CLIENT = 5001;
const FLAG_SETS = [['-A'], ['-A', '-P'], ['-F'], ['-F', '-A'], ['-R'], ['-R', '-A'], ['-P'], ['-F', '-P', '-A']];
const PER_PORT = 6;

const topo = new Topology();
let server: Proc;

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  ({ server } = await startTunnel(topo, { server: { keepalive: 2 }, client: { keepalive: 2 } }));
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
  // Observer in the server namespace: hostile segments that actually arrived there.
  await topo.nft('server', `table inet rskobs {
  counter hostile_in {}
  chain pre { type filter hook prerouting priority -300; policy accept;
    tcp sport { ${SPORT_ROUTER}, ${SPORT_CLIENT} } counter name "hostile_in"
  }
}`);
}));
after(() => topo.destroy());

/** One hping3 run per server port, all ports at once (hping3 lingers ~1 s when nothing answers). */
async function hping(role: 'router' | 'client', sport: number, flags: string[]): Promise<number> {
  const runs: Array<Promise<unknown>> = [];
  for (let port = PORT_MIN; port <= PORT_MAX; port++) {
    runs.push(topo.exec(role, ['hping3', ADDR.server, '-p', String(port), '-s', String(sport), '-k', ...flags,
      '-d', '120', '-E', '/dev/urandom', '-c', String(PER_PORT), '-i', 'u1000', '-q'], { allowFail: true, timeoutMs: 15_000 }));
  }
  await Promise.all(runs);
  return PER_PORT * runs.length;
}

test('hostile segments get no reply, the server survives and the tunnel still works', { timeout: 120_000 }, topo.guard(async () => {
  const replies = await topo.addRule(NFT.pre,
    `iifname "${topo.dev.routerServer}" ip saddr ${ADDR.server} tcp dport { ${SPORT_ROUTER}, ${SPORT_CLIENT} } counter`);
  let fromRouter = 0;
  let fromClient = 0;
  for (const flags of FLAG_SETS) fromRouter += await hping('router', SPORT_ROUTER, flags);
  for (const flags of FLAG_SETS) fromClient += await hping('client', SPORT_CLIENT, flags);
  await new Promise((r) => setTimeout(r, 1000)); // late replies
  const arrived = (await topo.listCounters('server', 'rskobs')).hostile_in.packets;
  const replied = (await topo.ruleCounter(NFT.pre, replies)).packets;
  console.log(`hostile: sent ${fromRouter} from the router and ${fromClient} from the client; ${arrived} reached the server ns; ` +
    `${replied} segments came back from the server ns; server running: ${server.running}`);
  assert.ok(arrived >= fromRouter * 0.9, `only ${arrived} hostile segments reached the server namespace: the test did not test much`);
  assert.ok(server.running, `rsock-server died (exit ${server.exitCode ?? server.exitSignal})`);
  assert.equal(replied, 0, `the server namespace answered ${replied} hostile segments`);
  const r = await udpEcho(topo, { count: 200, rate: 400 });
  console.log(`hostile: afterwards ${r.received}/${r.sent} echoed`);
  assert.equal(r.bad, 0);
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed after the hostile segments`);
}));
