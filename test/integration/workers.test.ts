// --workers=2 on both ends, through the strict conntrack router: echo over many app flows byte for
// byte; each app flow reaches the target from ONE server socket (a flow that reached both server
// workers would have two); both workers of each end carry traffic (their own counters, SIGUSR2);
// a client worker's capture takes only its own connections' segments; a clean stop (exit 0, every
// worker's last counters logged) and a server restart the client rides out.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc } from '../lib/proc';
import { clientArgs, RECOVERY_BOUND_MS, RsockOptions, serverFlowSockets, startServer, startTunnel } from '../lib/rsock';
import { echoFlowResult, startEchoFlow, startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

const FLOWS = 16;
const server: RsockOptions = { keepalive: 1, duration: 120, extra: ['--workers=2'] };
const client: RsockOptions = { keepalive: 1, duration: 120, extra: ['--workers=2', '--conns=2'] };
const topo = new Topology();
let srv: Proc;
let cli: Proc;

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  ({ server: srv, client: cli } = await startTunnel(topo, { server, client }));
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
}));
after(() => topo.destroy());

/** Each worker's counters, from the "wN counters: k=v ..." lines SIGUSR2 makes the main thread log. */
async function workerCounters(p: Proc): Promise<Record<string, number>[]> {
  const mark = p.mark();
  p.signal('SIGUSR2');
  await p.waitFor(/ counters: /, 5000, mark);
  await p.waitFor(/w2 counters: /, 5000, mark);
  const lines = p.output().slice(mark).split('\n');
  return ['w1', 'w2'].map((w) => {
    const line = lines.find((l) => l.includes(`${w} counters: `));
    assert.ok(line, `no counters line of ${w}`);
    return Object.fromEntries(line.slice(line.indexOf('counters: ') + 10).trim().split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
  });
}

test('two workers each side: the logs say so and name the workers', () => {
  for (const p of [srv, cli]) {
    assert.match(p.output(), /2 worker threads/);
    assert.match(p.output(), /\bw1 /);
    assert.match(p.output(), /\bw2 /);
  }
  assert.match(srv.output(), /w1 rsock-server ready: ports 10001,10003,10005,10007,10009 /, 'worker 1 serves the even-indexed ports');
  assert.match(srv.output(), /w2 rsock-server ready: ports 10002,10004,10006,10008,10010 /);
});

test('a second multi-worker client on the same --ludp is refused, not let into the reuseport group', { timeout: 30_000 }, topo.guard(async () => {
  const second = topo.spawn('client', clientArgs(topo, client), { name: 'rsock-client-second' });
  assert.ok(await second.waitExit(15_000), 'the second client should exit');
  assert.equal(second.exitCode, 1);
  assert.match(second.output(), /--ludp: udp bind 127\.0\.0\.1:30000: Address already in use/);
}));

test(`${FLOWS} app flows at once: all echoed intact, each through one target socket, both workers of each end busy`, { timeout: 60_000 }, topo.guard(async () => {
  const sockets0 = (await serverFlowSockets(topo, srv.pid)).length;
  const srv0 = await workerCounters(srv);
  const cli0 = await workerCounters(cli);
  const flows = Array.from({ length: FLOWS }, (_, i) => startEchoFlow(topo, { count: 300, rate: 300, min: 16, max: 1400 }, `echo-flow-${i}`));
  const results = [];
  for (const f of flows) results.push(await echoFlowResult(f));
  results.forEach((r, i) => {
    assert.equal(r.bad, 0, `flow ${i}: echoed datagrams must be byte-for-byte identical`);
    assert.ok(r.ratio >= 0.99, `flow ${i}: only ${r.received}/${r.sent} echoed`);
  });
  const sockets = (await serverFlowSockets(topo, srv.pid)).length - sockets0;
  const srv1 = await workerCounters(srv);
  const cli1 = await workerCounters(cli);
  const share = (a: Record<string, number>[], b: Record<string, number>[], k: string) => b.map((x, i) => x[k] - a[i][k]);
  const srvShare = share(srv0, srv1, 'toTarget');
  const cliShare = share(cli0, cli1, 'udpIn');
  console.log(`workers: ${FLOWS} flows, ${results.reduce((a, r) => a + r.received, 0)} echoed; new target sockets ${sockets}; ` +
    `server workers carried ${srvShare.join(' / ')} datagrams to the target, client workers took ${cliShare.join(' / ')} from the apps`);
  assert.equal(sockets, FLOWS, `${sockets} new target sockets for ${FLOWS} app flows: a flow reached two server workers`);
  for (const [who, s] of [['server', srvShare], ['client', cliShare]] as const) {
    assert.ok(s.every((n) => n > 0), `a ${who} worker carried nothing: ${s.join(' / ')}`);
  }
  assert.equal(srvShare[0] + srvShare[1], results.reduce((a, r) => a + r.sent, 0), 'the server workers together got every datagram once');
  // Each client worker dials from its own local ports and its capture names them: it never sees the other's segments.
  const captured = share(cli0, cli1, 'rxPackets');
  const foreign = share(cli0, cli1, 'rxUnknown');
  assert.ok(foreign.every((n, k) => n <= 0.02 * captured[k] + 10), `client workers captured each other's segments: unknown ${foreign.join(' / ')} of ${captured.join(' / ')}`);
}));

test('the server stops cleanly and restarts; the client recovers on both classes', { timeout: RECOVERY_BOUND_MS + 60_000 }, topo.guard(async () => {
  await srv.stop(5000, 'SIGTERM');
  assert.equal(srv.exitCode, 0, 'clean stop: exit 0');
  assert.match(srv.output(), /w1 stopped; counters: /);
  assert.match(srv.output(), /w2 stopped; counters: /);
  srv = await startServer(topo, server, 'rsock-server-restarted');
  const back = await untilEcho(topo, RECOVERY_BOUND_MS);
  assert.ok(back.ok, `no echo within ${RECOVERY_BOUND_MS} ms of the restart`);
  // Flows of both classes: eight fresh flows, every one echoed.
  const flows = Array.from({ length: 8 }, (_, i) => startEchoFlow(topo, { count: 100, rate: 200 }, `after-restart-${i}`));
  for (const f of flows) {
    const r = await echoFlowResult(f);
    assert.equal(r.bad, 0);
    assert.ok(r.ratio >= 0.99, `after the restart: only ${r.received}/${r.sent} echoed`);
  }
  const r = await udpEcho(topo, { count: 100, rate: 200 });
  assert.ok(r.ratio >= 0.99);
  await cli.stop(5000, 'SIGTERM');
  assert.equal(cli.exitCode, 0, 'client: clean stop, exit 0');
  assert.match(cli.output(), /w2 stopped; counters: /);
}));
