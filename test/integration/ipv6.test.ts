// The tunnel over IPv6, end to end: client ns -> router ns (the same strict conntrack rules as the
// IPv4 topology, its inet table covering both families: INVALID dropped, UDP dropped, masquerade
// for IPv6 too) -> server ns, every address IPv6: --taddr=<server's IPv6 address> on the client,
// --ludp=[::1]:30000, the server's target [::1]:9999, its default listener (IPv6 and IPv4 at once).
// Checked: echo (also of datagrams fragmented at the IPv6 MSS), zero INVALID and kernel chatter < 1 %
// on IPv6, an IPv4 client served by the same listener at the same time, a client given the server's
// host name (an IPv6-only entry in the client namespace's hosts file) whose connections a capture at
// the router judges for TCP fidelity, then a kcptun transfer each way with matching sha256. The server runs
// without --dev: its namespace has no default route, so it captures on "any" (Linux cooked headers).
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADDR, ADDR6, NFT, Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { startCapture, stopCapture } from '../lib/capture';
import { readPcap } from '../lib/pcap';
import { PORT_MAX, PORT_MIN, startClient, startTunnel, testKey, tunnelSocketSegsOut } from '../lib/rsock';
import { connections, fidelity } from '../lib/wire-analysis';
import { serveResult, startKcptunClient, startKcptunServer, startTcpServe, startUdpEcho, tcpTransfer, udpEcho, untilEcho } from '../lib/traffic';

const TARGET6 = '[::1]:9999';
const LUDP6 = '[::1]:30000';
const LUDP4 = '127.0.0.1:30001';
const MIB = 1 << 20;
const KCP_BYTES = 20 * MIB;
const TRANSFER_TIMEOUT_MS = 120_000;
const SINK = '127.0.0.1:7100';
const KCP_LOCAL = '127.0.0.1:7200';
const SERVER_NAME = 'rsock-server.test';

const topo = new Topology({ ipv6: true });
let echo: Proc;
let server: Proc;
let client: Proc;
/** Handle of a router rule that counts the IPv6 TCP segments it forwards. */
let tcp6Rule: number;
let tcp4Rule: number;
/** /etc/netns/<client ns>: `ip netns exec` mounts its hosts file over /etc/hosts for that namespace only. */
let etcDir = '';
let madeEtcNetns = false;

before(topo.guard(async () => {
  await topo.up();
  madeEtcNetns = !fs.existsSync('/etc/netns');
  etcDir = path.join('/etc/netns', topo.ns.client);
  fs.mkdirSync(etcDir, { recursive: true });
  fs.writeFileSync(path.join(etcDir, 'hosts'), `127.0.0.1 localhost\n::1 localhost\n${ADDR6.server} ${SERVER_NAME}\n`);
  tcp6Rule = await topo.addRule(NFT.fwd, 'meta nfproto ipv6 meta l4proto tcp counter', 'add');
  tcp4Rule = await topo.addRule(NFT.fwd, 'meta nfproto ipv4 meta l4proto tcp counter', 'add');
  echo = await startUdpEcho(topo, TARGET6);
  ({ server, client } = await startTunnel(topo, {
    server: { taddr: TARGET6, keepalive: 2, verbose: true, dev: null },
    client: { ludp: LUDP6, keepalive: 2, dev: null },
  }));
  assert.equal(topo.serverAddr, ADDR6.server);
  assert.match(server.output(), / on any -> udp \[::1\]:9999/, 'the server should capture on "any"');
  assert.match(client.output(), new RegExp(`dialing ${ADDR6.server} on .* via ${topo.dev.client};`), 'the client should route to the server over IPv6 by itself');
  const first = await untilEcho(topo, 10_000, 50, LUDP6);
  assert.ok(first.ok, 'no echo through the IPv6 tunnel within 10 s of "ready"');
  console.log(`ipv6: first datagram echoed ${first.ms} ms after the client was ready`);
}));
after(async () => {
  await topo.destroy();
  if (etcDir) fs.rmSync(etcDir, { recursive: true, force: true });
  if (madeEtcNetns && fs.readdirSync('/etc/netns').length === 0) fs.rmdirSync('/etc/netns');
});

test('IPv6: 200 datagrams of 16..1200 bytes echoed via [::1] at both ends (>= 99 %, contents checked)', { timeout: 30_000 }, topo.guard(async () => {
  const r = await udpEcho(topo, { to: LUDP6, count: 200, min: 16, max: 1200, rate: 200 });
  console.log(`ipv6 echo: ${r.received}/${r.sent} echoed, bad=${r.bad} dup=${r.dup}, rtt p50=${r.rttMs.p50} ms p99=${r.rttMs.p99} ms`);
  assert.equal(r.bad, 0);
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
  // The server saw the client at the router's masqueraded IPv6 address, and its tunnel sockets are IPv6.
  assert.match(server.output(), new RegExp(`accepted \\[${ADDR6.routerServer}\\]:\\d+ on port`), 'the server should log its IPv6 peer');
  const socks = (await topo.tcpSockets('client')).filter((s) => s.state === 'ESTAB');
  assert.ok(socks.length > 0 && socks.every((s) => s.peer.startsWith(`[${ADDR6.server}]:`)), `client sockets: ${socks.map((s) => s.peer).join(' ')}`);
}));

test('IPv6: datagrams of 1300..4000 bytes, past the IPv6 MSS, are fragmented and come back whole', { timeout: 30_000 }, topo.guard(async () => {
  const r = await udpEcho(topo, { to: LUDP6, count: 300, min: 1300, max: 4000, rate: 300 });
  console.log(`ipv6 big: ${r.received}/${r.sent} echoed, bad=${r.bad}, rtt p50=${r.rttMs.p50} ms`);
  assert.equal(r.bad, 0);
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
}));

test('IPv6: kernel-generated TCP segments < 1 % of the tunnel segments; 0 INVALID; every tunnel segment IPv6', { timeout: 60_000 }, topo.guard(async () => {
  await sleep(500);
  const c0 = await topo.nstat('client');
  const s0 = await topo.nstat('server');
  const r0 = await topo.readNftCounters();
  const v6a = await topo.ruleCounter(NFT.fwd, tcp6Rule);
  const v4a = await topo.ruleCounter(NFT.fwd, tcp4Rule);
  const r = await udpEcho(topo, { to: LUDP6, count: 10_000, min: 200, max: 1200, rate: 2000, waitMs: 5000 });
  const c1 = await topo.nstat('client');
  const s1 = await topo.nstat('server');
  const r1 = await topo.readNftCounters();
  const v6b = await topo.ruleCounter(NFT.fwd, tcp6Rule);
  const v4b = await topo.ruleCounter(NFT.fwd, tcp4Rule);
  // The kernel's TCP counters in /proc/net/snmp are shared by IPv4 and IPv6.
  const kern = (a: Record<string, number>, b: Record<string, number>) => (b.TcpOutSegs - a.TcpOutSegs) + (b.TcpRetransSegs - a.TcpRetransSegs);
  const kernel = kern(c0, c1) + kern(s0, s1);
  const tunnel = (r1.tcp_c2s.packets - r0.tcp_c2s.packets) + (r1.tcp_s2c.packets - r0.tcp_s2c.packets);
  const tunnel6 = v6b.packets - v6a.packets;
  const ratio = kernel / Math.max(1, tunnel);
  console.log(`ipv6 bulk: ${r.received}/${r.sent} echoed in ${r.elapsedMs} ms (rtt p50=${r.rttMs.p50} ms); router forwarded ${tunnel} TCP segments ` +
    `(${tunnel6} IPv6, ${v4b.packets - v4a.packets} IPv4); kernels sent ${kernel}: chatter ${(ratio * 100).toFixed(3)} %; invalid drops ${r1.invalid_drops.packets}`);
  assert.equal(r.bad, 0);
  assert.ok(r.ratio >= 0.95, `bulk echo: only ${r.received}/${r.sent} echoed`);
  assert.ok(tunnel >= 2 * 10_000 * r.ratio * 0.99, `router forwarded only ${tunnel} TCP segments for ${r.sent} datagrams each way`);
  // Counted by a rule of its own, not as a difference of counters read moments apart (keepalives go on meanwhile).
  const tunnel4 = v4b.packets - v4a.packets;
  assert.ok(tunnel6 >= 2 * 10_000 * r.ratio * 0.99, `only ${tunnel6} IPv6 TCP segments forwarded`);
  assert.equal(tunnel4, 0, `every TCP segment the router forwarded should be IPv6, but ${tunnel4} were IPv4`);
  assert.ok(ratio < 0.01, `kernel chatter ${(ratio * 100).toFixed(2)} % >= 1 %`);
  assert.equal(r1.invalid_drops.packets, 0, 'router dropped INVALID segments');
  assert.equal(r1.udp_drops.packets - r0.udp_drops.packets, 0, 'no UDP should reach the router');
}));

test('the same default listener serves an IPv4 client alongside (dual stack)', { timeout: 40_000 }, topo.guard(async () => {
  const v4 = await startClient(topo, { taddr: ADDR.server, ludp: LUDP4, keepalive: 2 }, 'rsock-client-v4');
  assert.match(v4.output(), new RegExp(`dialing ${ADDR.server} on`));
  const first = await untilEcho(topo, 10_000, 50, LUDP4);
  assert.ok(first.ok, 'no echo through the IPv4 client within 10 s');
  const [r4, r6] = await Promise.all([
    udpEcho(topo, { to: LUDP4, count: 300, rate: 300 }),
    udpEcho(topo, { to: LUDP6, count: 300, rate: 300 }),
  ]);
  console.log(`dual stack: IPv4 client ${r4.received}/${r4.sent}, IPv6 client ${r6.received}/${r6.sent} echoed at the same time`);
  assert.equal(r4.bad + r6.bad, 0);
  assert.ok(r4.ratio >= 0.99 && r6.ratio >= 0.99, `IPv4 ${r4.received}/${r4.sent}, IPv6 ${r6.received}/${r6.sent}`);
  assert.match(server.output(), new RegExp(`accepted ${ADDR.routerServer.replace(/\./g, '\\.')}:\\d+ on port`), 'the server should log the IPv4 peer as IPv4');
  await v4.stop();
  assert.equal((await topo.readNftCounters()).invalid_drops.packets, 0);
}));

test('a host name with only an IPv6 address is dialed over IPv6; its segments at the router look like its kernel\'s', { timeout: 60_000 }, topo.guard(async () => {
  const ludp = '[::1]:30002';
  const cap = await startCapture(topo, 'router', topo.dev.routerServer, 'ipv6-name', { maxMs: 40_000 });
  try {
    const byName = await startClient(topo, { taddr: SERVER_NAME, ludp, keepalive: 2 }, 'rsock-client-name');
    assert.match(byName.output(), new RegExp(`dialing ${ADDR6.server} on`));
    const first = await untilEcho(topo, 10_000, 50, ludp);
    assert.ok(first.ok, 'no echo through the client that dialed by name');
    const r = await udpEcho(topo, { to: ludp, count: 400, rate: 400, random: true });
    assert.ok(r.ratio >= 0.99 && r.bad === 0, `${r.received}/${r.sent} echoed, ${r.bad} bad`);
    await sleep(300);
    await byName.stop();
  } finally {
    await stopCapture(cap);
  }
  // Only this client's connections had their handshakes captured: fidelity() judges those.
  const conns = connections(readPcap(cap.file), (ip, port) => ip === ADDR6.server && port >= PORT_MIN && port <= PORT_MAX);
  const f = fidelity(conns);
  console.log(`ipv6 fidelity: ${JSON.stringify({ ...f, examples: undefined })}`);
  const why = `\n${f.examples.join('\n')}`;
  assert.equal(f.withHandshake, PORT_MAX - PORT_MIN + 1, 'every connection\'s kernel handshake crossed the router');
  assert.equal(f.tsNegotiated, f.withHandshake);
  assert.ok(f.dataSegs >= 800, `only ${f.dataSegs} data segments`);
  assert.equal(f.dataSegsWithTs, f.dataSegs, `data segments without the timestamp option${why}`);
  assert.ok(f.tsPairs > 0 && f.ecrChecked > 0);
  assert.equal(f.tsBackwards + f.ecrUnknown, 0, `timestamps out of line${why}`);
  assert.ok(f.ipChecked > 0);
  assert.equal(f.ttlMismatch, 0, `data segments with another hop limit than their kernel handshake${why}`);
  // Each direction of a connection keeps one non-zero flow label for its data.
  let dirs = 0;
  for (const c of conns.filter((x) => x.syn && x.synAck)) {
    for (const segs of [c.c2s, c.s2c]) {
      if (segs.length === 0) continue;
      dirs++;
      const labels = new Set(segs.map((p) => p.flowLabel));
      assert.ok(labels.size === 1 && !labels.has(0), `${c.key}: flow labels ${[...labels].join(',')}`);
    }
  }
  assert.ok(dirs >= 2 * f.withHandshake - 2, `only ${dirs} directions carried data`);
}));

test(`IPv6: kcptun ${KCP_BYTES / MIB} MiB each way with sha256 match; 0 INVALID, < 1 % kernel segments`, { timeout: 2 * TRANSFER_TIMEOUT_MS + 40_000 }, topo.guard(async () => {
  // kcptun takes the echo's place as the server's target.
  await echo.stop();
  const serve = await startTcpServe(topo, 'server', SINK);
  const key = testKey(topo);
  startKcptunServer(topo, key, SINK, TARGET6);
  const kc = startKcptunClient(topo, key, KCP_LOCAL, LUDP6);
  await kc.waitFor(/listening on/, 5000).catch(() => undefined);
  const fwd0 = await topo.readNftCounters();
  const segs0 = await tunnelSocketSegsOut(topo);

  const sent = await tcpTransfer(topo, 'client', 'send', KCP_LOCAL, KCP_BYTES, TRANSFER_TIMEOUT_MS);
  const sunk = await serveResult(serve, 'sink', 1, 10_000);
  console.log(`ipv6 kcptun c->s: ${sunk.bytes} bytes, ${(KCP_BYTES / MIB / (sent.ms / 1000)).toFixed(2)} MiB/s`);
  assert.equal(sunk.bytes, KCP_BYTES);
  assert.equal(sunk.sha256, sent.sha256);

  const got = await tcpTransfer(topo, 'client', 'recv', KCP_LOCAL, KCP_BYTES, TRANSFER_TIMEOUT_MS);
  const src = await serveResult(serve, 'source', 1, 10_000);
  console.log(`ipv6 kcptun s->c: ${got.bytes} bytes, ${(KCP_BYTES / MIB / (got.ms / 1000)).toFixed(2)} MiB/s`);
  assert.equal(got.bytes, KCP_BYTES);
  assert.equal(got.sha256, src.sha256);

  const r = await topo.readNftCounters();
  const segs1 = await tunnelSocketSegsOut(topo);
  const fwd = r.tcp_c2s.packets + r.tcp_s2c.packets - (fwd0.tcp_c2s.packets + fwd0.tcp_s2c.packets);
  const kernel = segs1.client - segs0.client + segs1.server - segs0.server;
  console.log(`ipv6 kcptun: router forwarded ${fwd} TCP segments, invalid drops ${r.invalid_drops.packets}; ` +
    `tunnel kernel sockets (${segs1.sockets}) sent ${kernel} segments = ${((kernel / Math.max(1, fwd)) * 100).toFixed(3)} %`);
  assert.equal(r.invalid_drops.packets, 0, `router dropped ${r.invalid_drops.packets} INVALID segments`);
  assert.ok(fwd > (2 * KCP_BYTES) / 1500, `router forwarded only ${fwd} TCP segments for 2 x ${KCP_BYTES} bytes`);
  assert.ok(segs1.sockets > 0, 'the tunnel sockets should be found by ss');
  assert.ok(kernel / Math.max(1, fwd) < 0.01, `kernel sockets sent ${kernel} segments for ${fwd} tunnel segments`);
}));
