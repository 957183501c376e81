// Fuzzing the server (issue 7): 300,000 malformed segments from the router namespace, rate-limited
// to finish within a minute: random flags, lengths, windows, payloads (a quarter starting like a TLS
// application-data record), random seq/ack. Half are forged on the live 4-tuples as the client
// (within the window and anywhere), half come from the fuzzer's own address. Afterwards the server
// is alive, its RSS grew by less than 10 MB, nothing was sent to the fuzzer's own address, and the
// tunnel works again within 3 s.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { ADDR, NFT, Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { LOG, linesMatching, PORT_MAX, PORT_MIN, startTunnel } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';
import { liveTuples, startCapture, stopCapture } from '../lib/capture';
import { readPcap } from '../lib/pcap';
import { rawSend, routerNotrack } from '../lib/attack';
import { statusMiB } from '../lib/procstat';

const SEGMENTS = 300_000;
const RATE = 6500;
/** The fuzzer's own address, on the router's server-facing veth (the server can answer it: ARP works). */
const FUZZER = '10.201.2.66';
const PORTS = Array.from({ length: PORT_MAX - PORT_MIN + 1 }, (_, i) => PORT_MIN + i);

const topo = new Topology();
let server: Proc;
let client: Proc;

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  ({ server, client } = await startTunnel(topo, { server: { keepalive: 2 }, client: { keepalive: 2 } }));
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
  await topo.exec('router', ['ip', 'addr', 'add', `${FUZZER}/24`, 'dev', topo.dev.routerServer]);
  await routerNotrack(topo);
  // Observer in the server namespace: fuzz segments that arrived there, by source.
  await topo.nft('server', `table inet rskobs {
  counter from_fuzzer {}
  counter from_client_addr {}
  chain pre { type filter hook prerouting priority -300; policy accept;
    ip saddr ${FUZZER} counter name "from_fuzzer"
    ip saddr ${ADDR.routerServer} counter name "from_client_addr"
  }
}
`);
}));
after(() => topo.destroy());

/** The live connections with the seq and ack the client's last segment on each carried. */
async function liveWindows(): Promise<Array<{ src: string; sport: number; dst: string; dport: number; seq: number; ack: number }>> {
  const cap = await startCapture(topo, 'router', topo.dev.routerServer, 'windows',
    { filter: `tcp and src host ${ADDR.routerServer} and dst host ${ADDR.server}`, maxMs: 20_000 });
  try {
    await udpEcho(topo, { count: 200, rate: 400 });
  } finally {
    await stopCapture(cap);
  }
  const last = new Map<string, { src: string; sport: number; dst: string; dport: number; seq: number; ack: number }>();
  for (const p of readPcap(cap.file)) {
    if (!PORTS.includes(p.dport)) continue;
    last.set(`${p.sport}>${p.dport}`, { src: p.src, sport: p.sport, dst: p.dst, dport: p.dport, seq: (p.seq + p.payload.length) >>> 0, ack: p.ack });
  }
  const live = new Set((await liveTuples(topo)).map((t) => `${t.natPort}>${t.serverPort}`));
  return [...last.entries()].filter(([k]) => live.has(k)).map(([, v]) => v);
}

test(`${SEGMENTS} malformed segments: the server stays up, RSS < +10 MB, no answer to the fuzzer, the tunnel works after`, { timeout: 115_000 }, topo.guard(async () => {
  const spoof = await liveWindows();
  assert.ok(spoof.length >= PORTS.length / 2, `only ${spoof.length} live connections with a known window to forge on`);
  const replies = await topo.addRule(NFT.pre, `iifname "${topo.dev.routerServer}" ip daddr ${FUZZER} counter`);
  await sleep(1000);
  const rssBefore = statusMiB(server.pid, 'VmRSS')!;
  const cMark = client.mark();
  const sent = await rawSend(topo, 'fuzz', {
    mode: 'fuzz', count: SEGMENTS, rate: RATE, maxMs: 60_000, spoof, window: 65535,
    own: { src: FUZZER, sportMin: 20000, sportMax: 29999, dst: ADDR.server, dports: PORTS },
  });
  await sleep(2000); // late replies, and the server's backlog of captured segments
  const rssAfter = statusMiB(server.pid, 'VmRSS');
  const replied = (await topo.ruleCounter(NFT.pre, replies)).packets;
  const arrived = await topo.listCounters('server', 'rskobs');
  const back = await untilEcho(topo, 3000);
  const echo = await udpEcho(topo, { count: 200, rate: 400 });
  console.log(`fuzz: sent ${sent.sent} segments in ${sent.ms} ms (${JSON.stringify(sent.kinds)}; ${sent.errors} send errors ${sent.lastError}); ` +
    `arrived at the server ns: ${arrived.from_fuzzer.packets} from the fuzzer's address, ${arrived.from_client_addr.packets} from the client's; ` +
    `server running ${server.running}, RSS ${rssBefore} -> ${rssAfter} MiB; ${replied} segments sent to the fuzzer's address; ` +
    `echo back after ${back.ok ? back.ms : 'never (3 s)'} ms, then ${echo.received}/${echo.sent}; client running ${client.running}, ` +
    `connections lost meanwhile (recovered by redialing): ${linesMatching(client, LOG.down, cMark).length}`);
  assert.equal(sent.sent, SEGMENTS, 'raw-send did not send every segment within its time bound');
  assert.ok(sent.ms < 60_000, `the fuzz run took ${sent.ms} ms`);
  assert.ok(arrived.from_fuzzer.packets >= (SEGMENTS / 2) * 0.99, `only ${arrived.from_fuzzer.packets} fuzz segments from the fuzzer's address reached the server`);
  // (This count also holds the tunnel's own few thousand segments; the forged ones are 150,000.)
  assert.ok(arrived.from_client_addr.packets >= (SEGMENTS / 2) * 0.99, `only ${arrived.from_client_addr.packets} forged segments reached the server`);
  assert.ok(server.running, `rsock-server died (exit ${server.exitCode ?? server.exitSignal})`);
  assert.ok(rssAfter !== undefined && rssAfter - rssBefore < 10, `the server's RSS grew from ${rssBefore} to ${rssAfter} MiB`);
  assert.equal(replied, 0, `${replied} segments went back to the fuzzer's address`);
  assert.ok(client.running, 'rsock-client died');
  assert.ok(back.ok, 'the tunnel did not carry an echo within 3 s after the fuzz run');
  assert.equal(echo.bad, 0);
  assert.ok(echo.ratio >= 0.99, `after the fuzz run only ${echo.received}/${echo.sent} echoed`);
}));
