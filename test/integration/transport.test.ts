// --type=udp|all through the strict router (which drops all UDP unless a test opens the ports): echo
// over fake TCP when UDP is dropped, everything over UDP when it is open (router counters), --type=all
// preferring UDP, and UDP blocked mid-run moving the flow to fake TCP and back without a new flow.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Counters, NFT, Topology } from '../lib/netns';
import { PORT_MAX, PORT_MIN, serverFlowSockets, startTunnel } from '../lib/rsock';
import { echoFlowResult, startEchoFlow, startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';
import { Proc, sleep } from '../lib/proc';

const topo = new Topology();
const PORT_RANGE = `${PORT_MIN}-${PORT_MAX}`;
let procs: Proc[] = [];

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
}));
after(async () => {
  for (const p of procs) await p.stop();
  await topo.destroy();
});

async function tunnel(type: 'udp' | 'all'): Promise<{ server: Proc; client: Proc }> {
  const t = await startTunnel(topo, { server: { keepalive: 1, extra: [`--type=${type}`] }, client: { keepalive: 1, extra: [`--type=${type}`] } });
  procs = [t.server, t.client];
  return t;
}

async function stopTunnel(): Promise<void> {
  for (const p of procs) await p.stop();
  procs = [];
}

/** Rules at the top of the router's forward chain, with counters, for UDP to and from the ports. */
async function udpRules(verdict: 'accept' | 'drop'): Promise<{ c2s: number; s2c: number }> {
  const s2c = await topo.addRule(NFT.fwd, `udp sport ${PORT_RANGE} counter ${verdict}`);
  const c2s = await topo.addRule(NFT.fwd, `udp dport ${PORT_RANGE} counter ${verdict}`);
  return { c2s, s2c };
}

async function udpCounts(h: { c2s: number; s2c: number }): Promise<{ c2s: number; s2c: number }> {
  return { c2s: (await topo.ruleCounter(NFT.fwd, h.c2s)).packets, s2c: (await topo.ruleCounter(NFT.fwd, h.s2c)).packets };
}

const tcpPackets = (a: Counters, b: Counters) => b.tcp_c2s.packets - a.tcp_c2s.packets + (b.tcp_s2c.packets - a.tcp_s2c.packets);

test('--type=all through the router that drops UDP: echo works over fake TCP', { timeout: 60_000 }, topo.guard(async () => {
  const r0 = await topo.readNftCounters();
  await tunnel('all');
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo within 10 s of "ready"');
  const r = await udpEcho(topo, { count: 200, min: 16, max: 1200, rate: 200 });
  const r1 = await topo.readNftCounters();
  console.log(`transport all, udp dropped: first echo after ${first.ms} ms; ${r.received}/${r.sent} echoed, rtt p50=${r.rttMs.p50} ms; ` +
    `router: ${r1.udp_drops.packets - r0.udp_drops.packets} udp dropped, ${tcpPackets(r0, r1)} tcp forwarded`);
  assert.equal(r.bad, 0);
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
  assert.ok(r1.udp_drops.packets - r0.udp_drops.packets > 0, 'the client never tried UDP');
  assert.ok(tcpPackets(r0, r1) >= 2 * r.received, 'the datagrams did not cross as TCP');
  await stopTunnel();
}));

test('--type=all against a server without UDP (its kernel answers port unreachable): echo over fake TCP, the log says why', { timeout: 60_000 }, topo.guard(async () => {
  const rules = await udpRules('accept');
  const t = await startTunnel(topo, { server: { keepalive: 1 }, client: { keepalive: 1, extra: ['--type=all'] } });
  procs = [t.server, t.client];
  assert.ok((await untilEcho(topo, 10_000)).ok);
  const r = await udpEcho(topo, { count: 200, rate: 200 });
  await t.client.waitFor(/udp path to port \d+ down: .*--type=udp or all/, 10_000);
  const u = await udpCounts(rules);
  console.log(`transport all vs a tcp server: ${r.received}/${r.sent} echoed; ${u.c2s} udp probes forwarded, ${u.s2c} answers from the ports`);
  await stopTunnel();
  for (const h of [rules.c2s, rules.s2c]) await topo.deleteRule(NFT.fwd, h);
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
  assert.equal(u.s2c, 0, 'something answered on the UDP ports');
  assert.ok(u.c2s > 0, 'the client never tried UDP');
}));

test('UDP open on the ports: --type=udp carries everything over UDP, the router forwards no TCP', { timeout: 60_000 }, topo.guard(async () => {
  const rules = await udpRules('accept');
  const r0 = await topo.readNftCounters();
  const u0 = await udpCounts(rules);
  await tunnel('udp');
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo within 10 s of "ready"');
  const r = await udpEcho(topo, { count: 500, min: 16, max: 1200, rate: 250 });
  const big = await udpEcho(topo, { count: 50, min: 3000, max: 8000, rate: 50 });
  // A prober on the client's side sends random datagrams straight to every port: no answer at all.
  const probes = [];
  for (let port = PORT_MIN; port <= PORT_MAX; port++) {
    probes.push(await udpEcho(topo, { to: `${topo.serverAddr}:${port}`, count: 20, min: 1, max: 1400, rate: 200, waitMs: 1000, random: true }));
  }
  const probeAnswers = probes.reduce((n, p) => n + p.received, 0);
  const after = await udpEcho(topo, { count: 100, rate: 200 });
  const r1 = await topo.readNftCounters();
  const u1 = await udpCounts(rules);
  console.log(`transport udp: ${probeAnswers} answers to ${probes.length * 20} random probes; then ${after.received}/${after.sent} echoed`);
  assert.equal(probeAnswers, 0, 'the server answered random datagrams');
  assert.ok(after.ratio >= 0.99, 'the tunnel suffered from the probes');
  console.log(`transport udp: ${r.received}/${r.sent} echoed (rtt p50=${r.rttMs.p50} ms p99=${r.rttMs.p99} ms), ${big.received}/${big.sent} of 3-8 KB; ` +
    `router: udp ${u1.c2s - u0.c2s} c2s / ${u1.s2c - u0.s2c} s2c, tcp ${tcpPackets(r0, r1)}`);
  await stopTunnel();
  for (const h of [rules.c2s, rules.s2c]) await topo.deleteRule(NFT.fwd, h);
  assert.equal(r.bad + big.bad, 0);
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
  assert.ok(big.ratio >= 0.95, `only ${big.received}/${big.sent} fragmented datagrams echoed`);
  assert.equal(tcpPackets(r0, r1), 0, 'the router forwarded TCP');
  assert.ok(u1.c2s - u0.c2s >= r.received + 3 * big.received, 'fewer UDP datagrams than app datagrams client -> server');
  assert.ok(u1.s2c - u0.s2c >= r.received + 3 * big.received, 'fewer UDP datagrams than app datagrams server -> client');
}));

test('--type=udp --obfs=none --crypt=aead: 10,000 datagrams at 2,000/s, still no TCP', { timeout: 90_000 }, topo.guard(async () => {
  const rules = await udpRules('accept');
  const r0 = await topo.readNftCounters();
  const mode = { obfs: 'none' as const, crypt: 'aead' as const, keepalive: 1, extra: ['--type=udp'] };
  const t = await startTunnel(topo, { server: mode, client: mode });
  procs = [t.server, t.client];
  assert.ok((await untilEcho(topo, 10_000)).ok);
  const r = await udpEcho(topo, { count: 10_000, min: 200, max: 1200, rate: 2000, waitMs: 5000 });
  const r1 = await topo.readNftCounters();
  console.log(`transport udp aead bulk: ${r.received}/${r.sent} echoed in ${r.elapsedMs} ms (rtt p50=${r.rttMs.p50} ms p99=${r.rttMs.p99} ms); tcp ${tcpPackets(r0, r1)}`);
  await stopTunnel();
  for (const h of [rules.c2s, rules.s2c]) await topo.deleteRule(NFT.fwd, h);
  assert.equal(r.bad, 0);
  assert.ok(r.ratio >= 0.95, `only ${r.received}/${r.sent} echoed`);
  assert.equal(tcpPackets(r0, r1), 0);
}));

test('--type=all uses UDP; UDP blocked mid-run moves the flow to fake TCP, unblocked moves it back', { timeout: 120_000 }, topo.guard(async () => {
  const open = await udpRules('accept');
  const { server, client } = await tunnel('all');
  await client.waitFor(/udp path to port \d+ up/, 10_000);
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok);
  await sleep(1000); // every port's path up
  const r0 = await topo.readNftCounters();
  const u0 = await udpCounts(open);
  const r = await udpEcho(topo, { count: 500, min: 16, max: 1200, rate: 250 });
  const r1 = await topo.readNftCounters();
  const u1 = await udpCounts(open);
  console.log(`transport all, udp open: ${r.received}/${r.sent} echoed; router: udp ${u1.c2s - u0.c2s} c2s, tcp ${tcpPackets(r0, r1)} (keepalives)`);
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
  assert.ok(u1.c2s - u0.c2s >= r.received, 'the datagrams did not go over UDP');
  assert.ok(tcpPackets(r0, r1) < r.received / 5, `${tcpPackets(r0, r1)} TCP packets for ${r.received} datagrams: data went on fake TCP`);

  // One flow, 30 s at 100 datagrams/s; UDP blocked from 5 s to 17 s.
  const flow = startEchoFlow(topo, { count: 3000, min: 100, max: 1000, rate: 100, waitMs: 3000 });
  procs.push(flow.proc);
  await sleep(5000);
  const flowSockets = await serverFlowSockets(topo, server.pid);
  const mark = client.mark();
  const block = await udpRules('drop');
  const blockedAt = Date.now();
  await client.waitFor(/flows move to fake tcp/, 15_000, mark);
  const fallbackMs = Date.now() - blockedAt;
  const t0 = await topo.readNftCounters();
  await sleep(4000);
  const t1 = await topo.readNftCounters();
  const duringBlock = tcpPackets(t0, t1);
  const mark2 = client.mark();
  for (const h of [block.c2s, block.s2c]) await topo.deleteRule(NFT.fwd, h);
  const openedAt = Date.now();
  await client.waitFor(/flows move to udp/, 15_000, mark2);
  const backMs = Date.now() - openedAt;
  const res = await echoFlowResult(flow);
  const afterSockets = await serverFlowSockets(topo, server.pid);
  console.log(`transport all, mid-run: fallback after ${fallbackMs} ms, back on udp after ${backMs} ms; flow ${res.received}/${res.sent} echoed, ` +
    `longest gap ${res.maxGapMs} ms; ${duringBlock} TCP packets in 4 s of the block; server flow sockets ${flowSockets.length} -> ${afterSockets.length}`);
  assert.ok(fallbackMs <= 8000, `fallback took ${fallbackMs} ms`);
  assert.ok(backMs <= 10_000, `return to UDP took ${backMs} ms`);
  assert.ok(duringBlock >= 2 * 300, `only ${duringBlock} TCP packets while UDP was blocked: the flow did not move to fake TCP`);
  assert.equal(res.bad, 0);
  // Lost: at most what was sent while UDP was blocked and not yet declared dead, plus a little.
  assert.ok(res.sent - res.received <= (fallbackMs / 1000 + 2) * 100, `${res.sent - res.received} of ${res.sent} lost`);
  assert.ok(res.maxGapMs <= fallbackMs + 2000, `a gap of ${res.maxGapMs} ms`);
  // The earlier echo runs' flows expire meanwhile; the running flow's socket stays, and none is new.
  const key = (x: { local: string }) => x.local;
  assert.ok(afterSockets.length >= 1, 'the flow was closed at the server');
  assert.ok(afterSockets.every((x) => flowSockets.map(key).includes(key(x))), 'the switches opened a new flow at the server');
  await stopTunnel();
  for (const h of [open.c2s, open.s2c]) await topo.deleteRule(NFT.fwd, h);
}));
