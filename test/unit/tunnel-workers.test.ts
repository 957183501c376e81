// --workers on the server, in memory: two RsockServers on one host, each with its class of ports, and
// the real client pinning flows to classes. A flow must reach one worker only: one socket towards the
// target (the echo sees one source port per flow), and a class that goes down drops only its flows.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { flowClass } from '../../src/core/partition';
import { sodiumCrypto } from '../sim/crypto';
import { UdpApp } from '../sim/network';
import { SimTunnel } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

const PORTS = [10001, 10002, 10003, 10004];
const FLOWS = 8;

const dgram = (flow: number, i: number) => {
  const b = Buffer.alloc(200, (flow * 31 + i) & 0xff);
  b.writeUInt32BE(flow, 0);
  b.writeUInt32BE(i, 4);
  return b;
};

/** Sends `count` datagrams on every app (app f is client flow f + 1: flows are numbered as they open). */
function burst(t: SimTunnel, apps: UdpApp[], from: number, count: number): void {
  for (let i = from; i < from + count; i++) {
    apps.forEach((a, f) => t.send(a, dgram(f, i)));
    if (i % 10 === 9) t.run(1);
  }
  t.run(200);
}

function up(workers: number | null): { t: SimTunnel; apps: UdpApp[] } {
  const t = new SimTunnel(crypto, { ports: PORTS });
  if (workers === null) t.startServer();
  else t.startServerWorkers(workers);
  t.startClient();
  assert.ok(t.net.time.runUntil(() => t.client.liveConnections === PORTS.length, 3000) >= 0, 'every connection live');
  const apps: UdpApp[] = [];
  for (let f = 0; f < FLOWS; f++) {
    apps.push(t.app());
    t.send(apps[f], dgram(f, 0));
    t.run(5);
  }
  return { t, apps };
}

/** Per app flow: the datagram numbers echoed back (checked byte for byte) and the echo's source ports. */
function replies(t: SimTunnel, apps: UdpApp[]) {
  return apps.map((a, f) => {
    const got = new Set<number>();
    for (const r of a.received) {
      const i = r.data.readUInt32BE(4);
      assert.equal(r.data.readUInt32BE(0), f, `flow ${f} got another flow's datagram`);
      assert.ok(r.data.equals(dgram(f, i)), `datagram ${f}/${i} came back changed`);
      got.add(i);
    }
    const sources = new Set(t.echo.received.filter((r) => r.data.readUInt32BE(0) === f).map((r) => r.port));
    return { got, sources };
  });
}

test('two server workers: every flow echoed intact through one target socket, both workers carry flows', async () => {
  const { t, apps } = up(2);
  burst(t, apps, 1, 200);
  const r = replies(t, apps);
  r.forEach((x, f) => {
    assert.equal(x.got.size, 201, `flow ${f}: ${x.got.size}/201 echoed`);
    assert.equal(x.sources.size, 1, `flow ${f} reached the target from ${x.sources.size} sockets (two workers)`);
  });
  const flows = t.servers.map((s) => s.stats().flows);
  assert.equal(flows[0] + flows[1], FLOWS, `flows per worker ${flows}: a flow was opened twice`);
  for (let k = 0; k < 2; k++) {
    const mine = [...Array(FLOWS).keys()].filter((f) => flowClass(f + 1, 2) === k).length;
    assert.equal(flows[k], mine, `worker ${k} holds ${flows[k]} flows, the hash gives it ${mine}`);
    assert.ok(t.servers[k].stats().toTarget > 0, `worker ${k} carried nothing`);
  }
  await t.stop();
});

test('a server worker going down drops only the flows pinned to its class', async () => {
  const { t, apps } = up(2);
  burst(t, apps, 1, 50);
  await t.servers[1].stop();
  t.run(500);
  assert.equal(t.client.liveConnections, 2, "class 1's connections are down, class 0's up");
  const before = apps.map((a) => a.received.length);
  const dropsBefore = t.client.stats().droppedNoConn;
  burst(t, apps, 100, 50);
  apps.forEach((a, f) => {
    const got = a.received.length - before[f];
    if (flowClass(f + 1, 2) === 0) assert.equal(got, 50, `flow ${f} of the live class lost datagrams`);
    else assert.equal(got, 0, `flow ${f} of the dead class was sent elsewhere`);
  });
  const dead = [...Array(FLOWS).keys()].filter((f) => flowClass(f + 1, 2) === 1).length;
  assert.equal(t.client.stats().droppedNoConn - dropsBefore, dead * 50, 'counted as no connection');
  for (const x of replies(t, apps)) assert.ok(x.sources.size <= 1);
  await t.stop();
});

test('a server without workers (one class): every flow goes over every port, as before', async () => {
  const { t, apps } = up(null);
  t.net.wire = [];
  burst(t, [apps[0]], 1, 100);
  const ports = new Set<number>();
  for (const w of t.net.wire) if (w.from === 'client' && w.seg && w.seg.wireLen > 0) ports.add(w.seg.dstPort);
  assert.deepEqual([...ports].sort(), PORTS, 'one flow spread over all ports');
  assert.equal(replies(t, apps)[0].got.size, 101);
  await t.stop();
});
