// Blind resets (issue 7, RFC 5961): an off-path attacker who knows the 4-tuples but not the sequence
// numbers sends 20,000 RSTs with random seq at the live connections, both ways (forged as the client
// towards the server and as the server towards the client), from the router namespace, while an
// echo flow runs. Nothing may be lost: no "down" line on the client, no "closed" line on the server,
// no echo gap over 1 s, the same 4-tuples afterwards. (A router's `reject with tcp reset`, whose seq is
// exact, must still make the client reconnect: recovery.test.ts, unchanged.)
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { LOG, linesMatching, PORT_MAX, PORT_MIN, startTunnel } from '../lib/rsock';
import { echoFlowResult, startEchoFlow, startUdpEcho, untilEcho } from '../lib/traffic';
import { liveTuples } from '../lib/capture';
import { rawSend, routerNotrack } from '../lib/attack';

const RSTS = 20_000;
const RATE = 4000;
const CONNS = PORT_MAX - PORT_MIN + 1;

const topo = new Topology();
let server: Proc;
let client: Proc;

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  ({ server, client } = await startTunnel(topo, { server: { keepalive: 2 }, client: { keepalive: 2 } }));
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
  await routerNotrack(topo);
  // Observers: RSTs that actually reached each end (counted before anything there can drop them).
  for (const role of ['client', 'server'] as const) {
    await topo.nft(role, `table inet rskobs {
  counter rst_in {}
  chain pre { type filter hook prerouting priority -300; policy accept; tcp flags & rst == rst counter name "rst_in"
  }
}
`);
  }
}));
after(() => topo.destroy());

test(`${RSTS} blind RSTs with random seq at the live 4-tuples: no connection lost, no echo gap over 1 s`, { timeout: 110_000 }, topo.guard(async () => {
  // Every slot up, so every connection is a target.
  let tuples = await liveTuples(topo);
  for (let i = 0; i < 50 && tuples.length < CONNS; i++) { await sleep(200); tuples = await liveTuples(topo); }
  assert.equal(tuples.length, CONNS, `expected ${CONNS} live connections in the router's conntrack, found ${tuples.length}`);
  const spoof = tuples.flatMap((t) => [
    { src: t.natIp, sport: t.natPort, dst: t.serverIp, dport: t.serverPort }, // as the client, towards the server
    { src: t.serverIp, sport: t.serverPort, dst: t.clientIp, dport: t.clientPort }, // as the server, towards the client
  ]);
  const before = tuples.map((t) => `${t.clientPort}>${t.serverPort}`).sort();
  const cMark = client.mark();
  const sMark = server.mark();
  // The echo flow spans the flood with a second on each side.
  const flow = startEchoFlow(topo, { count: Math.ceil((RSTS / RATE + 3) * 100), rate: 100, min: 64, max: 600, waitMs: 2000 }, 'echo-during-rsts');
  await sleep(1000);
  const sent = await rawSend(topo, 'blind-rst', { mode: 'rst', count: RSTS, rate: RATE, maxMs: 30_000, spoof });
  const echo = await echoFlowResult(flow);
  await sleep(500);
  const arrived = {
    server: (await topo.listCounters('server', 'rskobs')).rst_in.packets,
    client: (await topo.listCounters('client', 'rskobs')).rst_in.packets,
  };
  const down = linesMatching(client, LOG.down, cMark);
  const closed = linesMatching(server, LOG.closed, sMark);
  const after = (await liveTuples(topo)).map((t) => `${t.clientPort}>${t.serverPort}`).sort();
  console.log(`blind-rst: sent ${sent.sent} RSTs in ${sent.ms} ms (${JSON.stringify(sent.kinds)}, ${sent.errors} send errors) at ${tuples.length} connections; ` +
    `arrived: ${arrived.server} at the server, ${arrived.client} at the client; connections reset: client logged ${down.length} "down", ` +
    `server logged ${closed.length} "closed"; echo ${echo.received}/${echo.sent}, longest gap ${echo.maxGapMs} ms; ` +
    `4-tuples kept: ${before.filter((t) => after.includes(t)).length}/${before.length}`);
  for (const l of [...down, ...closed].slice(0, 6)) console.log(`blind-rst:   ${l.trim()}`);
  assert.equal(sent.sent, RSTS, 'raw-send did not send every RST');
  assert.equal(sent.errors, 0, `raw-send: ${sent.errors} send errors (${sent.lastError})`);
  assert.ok(arrived.server >= (RSTS / 2) * 0.99 && arrived.client >= (RSTS / 2) * 0.99,
    `the RSTs did not reach both ends (${arrived.server} at the server, ${arrived.client} at the client): the test did not test much`);
  assert.ok(server.running && client.running, 'rsock-server and rsock-client must survive');
  assert.deepEqual(down, [], `the client lost ${down.length} connections to blind RSTs`);
  assert.deepEqual(closed, [], `the server closed ${closed.length} connections after blind RSTs`);
  assert.equal(echo.bad, 0);
  assert.ok(echo.maxGapMs <= 1000, `the echo flow stalled for ${echo.maxGapMs} ms`);
  assert.ok(echo.ratio >= 0.99, `only ${echo.received}/${echo.sent} echoed during the RSTs`);
  assert.deepEqual(after, before, 'the connections (4-tuples) changed: some were re-dialed');
}));
