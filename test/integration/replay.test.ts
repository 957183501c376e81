// Replay (issue 7): an on-path attacker records the client's segments at the router and plays them
// back. (1) The recorded segments, replayed into the server on the live connections with tcpreplay
// on the router's server-facing veth: the echo target must receive no datagram twice, and the tunnel
// stays up. (2) A Hello recorded from a real connection, replayed on a new kernel TCP connection from
// the router with the client payloads that followed it: nothing may change (no connection of the
// real client retired or lost, no new session, no echo gap over 1 s).
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'path';
import { ADDR, Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { LOG, linesAbout, linesMatching, PORT_MAX, PORT_MIN, startTunnel } from '../lib/rsock';
import { echoFlowResult, echoTargetStats, startEchoFlow, startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';
import { liveTuples, startCapture, stopCapture } from '../lib/capture';
import { readPcap, writePcap } from '../lib/pcap';
import { connections } from '../lib/wire-analysis';
import { tcpPoke } from '../lib/attack';

const TUNNEL_PORTS = Array.from({ length: PORT_MAX - PORT_MIN + 1 }, (_, i) => PORT_MIN + i);
const isServer = (ip: string, port: number) => ip === ADDR.server && TUNNEL_PORTS.includes(port);
/** Client-to-server segments as the server sees them (after masquerade). */
const C2S = `tcp and src host ${ADDR.routerServer} and dst host ${ADDR.server}`;

const topo = new Topology();
let server: Proc;
let client: Proc;
let echo: Proc;
/** The first client payloads of every connection, recorded from the start of the tunnel. */
let opening: Array<{ port: number; payloads: Buffer[] }> = [];

before(topo.guard(async () => {
  await topo.up();
  echo = await startUdpEcho(topo);
  const cap = await startCapture(topo, 'router', topo.dev.routerServer, 'opening', { filter: C2S, maxMs: 30_000 });
  try {
    ({ server, client } = await startTunnel(topo, { server: { keepalive: 2 }, client: { keepalive: 2 } }));
    const first = await untilEcho(topo, 10_000);
    assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
    await udpEcho(topo, { count: 100, rate: 200 });
  } finally {
    await stopCapture(cap);
  }
  opening = connections(readPcap(cap.file), isServer).filter((c) => c.syn && c.c2s.length >= 4)
    .map((c) => ({ port: c.serverPort, payloads: c.c2s.slice(0, 4).map((p) => Buffer.from(p.payload)) }));
}));
after(() => topo.destroy());

/** The server's counters line (SIGUSR2), for the log: rxReplayed / rxForged when the server has them. */
async function serverCounters(): Promise<string> {
  const mark = server.mark();
  server.signal('SIGUSR2');
  return (await server.waitFor(/counters/, 3000, mark).catch(() => 'no counters line')).trim();
}

test('recorded client segments replayed into the server deliver nothing twice; the tunnel stays up', { timeout: 110_000 }, topo.guard(async () => {
  const cap = await startCapture(topo, 'router', topo.dev.routerServer, 'record', { filter: C2S, maxMs: 30_000 });
  let recorded;
  try {
    recorded = await udpEcho(topo, { count: 300, rate: 300, min: 32, max: 1000 });
    await sleep(300);
  } finally {
    await stopCapture(cap);
  }
  const pkts = readPcap(cap.file);
  const dataSegs = pkts.filter((p) => p.payload.length > 0 && TUNNEL_PORTS.includes(p.dport));
  const base = await echoTargetStats(echo);
  assert.equal(base.dupes, 0, 'the echo target saw repeats before any replay: the count would mean nothing');
  const cMark = client.mark();
  const sMark = server.mark();
  // The replay: the recorded frames as they were, at 2000 packets/s, out of the router's server-facing veth.
  const replayFile = path.join(topo.logDir, 'replay.pcap');
  writePcap(replayFile, pkts.map((p) => ({ timeMs: p.timeMs, frame: p.frame })));
  const rr = await topo.exec('router', ['tcpreplay', '-q', '-i', topo.dev.routerServer, '--pps=2000', replayFile], { timeoutMs: 60_000, allowFail: true });
  const replayed = Number(/Successful packets:\s+(\d+)/.exec(rr.stdout)?.[1] ?? NaN);
  await sleep(1500);
  const afterStats = await echoTargetStats(echo);
  const delivered = afterStats.dupes - base.dupes;
  const down = linesMatching(client, LOG.down, cMark);
  const closed = linesMatching(server, LOG.closed, sMark);
  const check = await udpEcho(topo, { count: 200, rate: 400 });
  console.log(`replay: recorded ${pkts.length} client segments (${dataSegs.length} with payload) carrying ${recorded.received} echoed datagrams; ` +
    `tcpreplay sent ${replayed}; the echo target received ${delivered} datagrams a second time; client "down" ${down.length}, server "closed" ${closed.length}; ` +
    `echo afterwards ${check.received}/${check.sent}; server ${await serverCounters()}`);
  assert.equal(rr.code, 0, `tcpreplay failed: ${rr.stderr}`);
  assert.ok(dataSegs.length >= 250, `only ${dataSegs.length} data segments recorded: the replay would test little`);
  assert.ok(replayed >= pkts.length, `tcpreplay sent ${replayed} of ${pkts.length} packets`);
  assert.equal(delivered, 0, `${delivered} datagrams were delivered to the target a second time by the replay (of ${recorded.received} recorded)`);
  assert.deepEqual(down, [], 'the client lost connections during the replay');
  assert.deepEqual(closed, [], 'the server closed connections during the replay');
  assert.equal(check.bad, 0);
  assert.ok(check.ratio >= 0.99, `after the replay only ${check.received}/${check.sent} echoed`);
}));

test('a recorded Hello replayed on a new TCP connection changes nothing', { timeout: 110_000 }, topo.guard(async () => {
  assert.ok(opening.length >= 1, 'no connection with its first client payloads was recorded');
  const victim = opening[0];
  const live = await liveTuples(topo);
  const tuplesBefore = live.map((t) => `${t.clientPort}>${t.serverPort}`).sort();
  // The real client's connections as the server names them (after masquerade).
  const real = live.map((t) => `${t.natIp}:${t.natPort}`);
  const cMark = client.mark();
  const sMark = server.mark();
  // The echo flow runs long enough for a retired connection to be noticed (3 keepalives + 0.5 s).
  const flow = startEchoFlow(topo, { count: 1200, rate: 100, min: 64, max: 600, waitMs: 2000 }, 'echo-during-hello-replay');
  await sleep(1000);
  // From the router: the server sees it from the same address as the real client (masquerade), on another port.
  const poke = await tcpPoke(topo, 'router', `${ADDR.server}:${victim.port}`, victim.payloads, { gapMs: 300, holdMs: 3000 });
  const res = await echoFlowResult(flow);
  const down = linesMatching(client, LOG.down, cMark);
  // A new session or a retired slot is a change whatever the line names; a "closed" line counts when it
  // is about a real connection (the server may well log closing the attacker's own connection).
  const serverLines = [...linesMatching(server, new RegExp(`${LOG.replaced.source}|${LOG.joined.source}`), sMark),
    ...linesAbout(server, LOG.closed, real, sMark).filter((l) => !LOG.replaced.test(l))];
  const tuplesAfter = (await liveTuples(topo)).map((t) => `${t.clientPort}>${t.serverPort}`).sort();
  console.log(`replay hello: replayed ${victim.payloads.length} recorded payloads (${victim.payloads.map((p) => p.length).join(',')} B) on a new connection ` +
    `to port ${victim.port}: connected ${poke.connected}, got ${poke.received} B back, ended ${poke.ended}; client "down" ${down.length}; ` +
    `server closed/replaced/joined ${serverLines.length}; echo ${res.received}/${res.sent}, longest gap ${res.maxGapMs} ms; ` +
    `4-tuples kept ${tuplesBefore.filter((t) => tuplesAfter.includes(t)).length}/${tuplesBefore.length}`);
  for (const l of [...serverLines, ...down].slice(0, 6)) console.log(`replay hello:   ${l.trim()}`);
  assert.ok(poke.connected, `the replaying connection did not connect: ${poke.error}`);
  assert.deepEqual(serverLines, [], 'the replayed Hello changed the server\'s sessions');
  assert.deepEqual(down, [], 'the client lost a connection after the replayed Hello');
  assert.equal(res.bad, 0);
  assert.ok(res.maxGapMs <= 1000, `the echo flow stalled for ${res.maxGapMs} ms`);
  assert.ok(res.ratio >= 0.99, `only ${res.received}/${res.sent} echoed around the replayed Hello`);
  assert.deepEqual(tuplesAfter, tuplesBefore, 'the real client\'s connections changed');
}));
