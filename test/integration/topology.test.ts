// Proves the harness itself: routing, the router's strict firewall and NAT, the counters the other
// integration tests rely on, process handling and cleanup. Needs no rsock code.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import { execFileSync } from 'child_process';
import { ADDR, NFT, Topology } from '../lib/netns';
import { isAlive } from '../lib/proc';
import { startTcpServe, startUdpEcho, tcpTransfer, udpEcho } from '../lib/traffic';

const topo = new Topology();
before(() => topo.up());
after(() => topo.destroy());

test('routes and sysctls', { timeout: 20_000 }, topo.guard(async () => {
  const croutes = (await topo.exec('client', ['ip', '-4', 'route'])).stdout;
  assert.doesNotMatch(croutes, /default/, 'client must have no default route');
  assert.match(croutes, new RegExp(`${ADDR.serverNet.replace(/\./g, '\\.')} via ${ADDR.routerClient.replace(/\./g, '\\.')}`));
  const sroutes = (await topo.exec('server', ['ip', '-4', 'route'])).stdout;
  assert.match(sroutes, /10\.201\.1\.0\/24 via 10\.201\.2\.1/);
  const sysctl = async (k: string) => (await topo.exec('router', ['sysctl', '-n', k])).stdout.trim();
  assert.equal(await sysctl('net.ipv4.ip_forward'), '1');
  assert.equal(await sysctl('net.netfilter.nf_conntrack_tcp_be_liberal'), '0');
  for (const n of Object.values(topo.dev)) assert.ok(n.length <= 15, `interface name ${n} too long`);
}));

test('TCP passes the router, masqueraded to 10.201.2.1, with 0 invalid drops', { timeout: 30_000 }, topo.guard(async () => {
  const srv = await startTcpServe(topo, 'server', `${ADDR.server}:7000`);
  const before = await topo.readNftCounters();
  const nsBefore = await topo.nstat('client');
  const sent = await tcpTransfer(topo, 'client', 'send', `${ADDR.server}:7000`, 2 << 20, 20_000);
  const got = srv.jsonLines<{ op: string; sha256: string; bytes: number; remote: string }>().find((r) => r.op === 'sink');
  assert.ok(got, 'sink result');
  assert.equal(got.bytes, 2 << 20);
  assert.equal(got.sha256, sent.sha256);
  assert.match(got.remote, /^(::ffff:)?10\.201\.2\.1:\d+$/, `server should see the router's address, saw ${got.remote}`);
  const recv = await tcpTransfer(topo, 'client', 'recv', `${ADDR.server}:7000`, 1 << 20, 20_000);
  const src = srv.jsonLines<{ op: string; sha256: string }>().find((r) => r.op === 'source');
  assert.equal(recv.sha256, src?.sha256);
  const after = await topo.readNftCounters();
  const nsAfter = await topo.nstat('client');
  assert.ok(after.tcp_c2s.packets > before.tcp_c2s.packets, 'client->server TCP counted');
  assert.ok(after.tcp_s2c.packets > before.tcp_s2c.packets, 'server->client TCP counted');
  assert.equal(after.invalid_drops.packets, 0);
  assert.ok(nsAfter.TcpOutSegs > nsBefore.TcpOutSegs, 'nstat reads the client namespace');
  console.log(`topology: TCP c2s=${after.tcp_c2s.packets - before.tcp_c2s.packets} s2c=${after.tcp_s2c.packets - before.tcp_s2c.packets} ` +
    `client TcpOutSegs delta=${nsAfter.TcpOutSegs - nsBefore.TcpOutSegs}, server saw ${got.remote}`);
  await srv.stop();
}));

test('UDP is dropped by the router', { timeout: 30_000 }, topo.guard(async () => {
  const echo = await startUdpEcho(topo, `${ADDR.server}:7001`, 'server', 'udp-echo-direct');
  // The echo works inside the server namespace ...
  const local = await udpEcho(topo, { role: 'server', to: `${ADDR.server}:7001`, count: 20, rate: 200, waitMs: 1000 });
  assert.equal(local.received, 20);
  // ... and the helper that lists UDP sockets sees it.
  const socks = await topo.udpSockets('server', echo.pid);
  assert.ok(socks.some((s) => s.local === `${ADDR.server}:7001`), JSON.stringify(socks));
  // ... but nothing crosses the router.
  const before = await topo.readNftCounters();
  const res = await udpEcho(topo, { to: `${ADDR.server}:7001`, count: 20, rate: 200, waitMs: 1000 });
  const after = await topo.readNftCounters();
  assert.equal(res.received, 0);
  assert.ok(after.udp_drops.packets - before.udp_drops.packets >= 20, 'router counted the dropped UDP');
}));

test('rules can be inserted and deleted on the router (reject with tcp reset)', { timeout: 30_000 }, topo.guard(async () => {
  const srv = await startTcpServe(topo, 'server', `${ADDR.server}:7003`, 'tcp-serve-2');
  const h = await topo.addRule(NFT.fwd, 'tcp dport 7003 counter reject with tcp reset');
  await assert.rejects(tcpTransfer(topo, 'client', 'send', `${ADDR.server}:7003`, 1000, 5000), /ECONNREFUSED|failed/);
  assert.ok((await topo.ruleCounter(NFT.fwd, h)).packets >= 1);
  await topo.deleteRule(NFT.fwd, h);
  const ok = await tcpTransfer(topo, 'client', 'send', `${ADDR.server}:7003`, 1000, 5000);
  assert.equal(ok.bytes, 1000);
  await srv.stop();
}));

test('hping3 from the router reaches the server and replies are counted before conntrack', { timeout: 30_000 }, topo.guard(async () => {
  // Nothing listens on 7009: the server kernel answers each SYN with an RST. The hostile-segment test
  // counts replies the same way and expects none, so this shows that counting works.
  const h = await topo.addRule(NFT.pre, `iifname "${topo.dev.routerServer}" ip saddr ${ADDR.server} tcp dport 5000 counter`);
  await topo.exec('router', ['hping3', ADDR.server, '-S', '-p', '7009', '-s', '5000', '-k', '-c', '5', '-i', 'u20000', '-q'], { allowFail: true });
  const n = (await topo.ruleCounter(NFT.pre, h)).packets;
  assert.ok(n >= 5, `expected >= 5 RSTs from the server, counted ${n}`);
  await topo.deleteRule(NFT.pre, h);
}));

test('stop() escalates to SIGKILL within a bound', { timeout: 20_000 }, topo.guard(async () => {
  const p = topo.spawn('server', [process.execPath, '-e', "process.on('SIGTERM',()=>{}); console.log('up'); setInterval(()=>{},1000)"], { name: 'stubborn' });
  await p.waitFor(/up/, 5000);
  const t0 = Date.now();
  await p.stop(500);
  assert.ok(!isAlive(p.pid), 'process killed');
  assert.equal(p.exitSignal, 'SIGKILL');
  assert.ok(Date.now() - t0 < 4000);
}));

// Not guarded: destroy() runs inside this test on purpose.
test('destroy() removes the namespaces and every process in them', { timeout: 30_000 }, async () => {
  // A process we did not track (started through a shell that exits) must be killed too.
  await topo.exec('client', ['sh', '-c', 'sleep 300 >/dev/null 2>&1 &']);
  const pids = await topo.pids('client');
  assert.ok(pids.length >= 1);
  const echo = await startUdpEcho(topo, '127.0.0.1:7005', 'client', 'udp-echo-lo');
  const t0 = Date.now();
  await topo.destroy();
  assert.ok(Date.now() - t0 < 15_000, 'destroy is bounded');
  assert.ok(topo.gone(), 'namespaces deleted');
  for (const ns of Object.values(topo.ns)) assert.ok(!fs.existsSync(`/run/netns/${ns}`));
  for (const pid of [...pids, echo.pid]) assert.ok(!isAlive(pid), `pid ${pid} still alive`);
  const links = execFileSync('ip', ['-o', 'link']).toString();
  assert.ok(!links.includes(`rk${topo.id}`), 'no veth left in the root namespace');
});
