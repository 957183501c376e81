// Several forwards over one tunnel (issue 8): rsock-client's --ludp goes to the server's --taddr, and
// two --forward endpoints go to two more targets the server's --allow names (one by address, one by
// host name), all over the same fake-TCP connections through the strict router. A fourth forward names
// a target the server does not allow: it gets nothing, and the refusal is logged once.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc } from '../lib/proc';
import { linesMatching, startTunnel } from '../lib/rsock';
import { echoTargetStats, EchoTargetStats, startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

const topo = new Topology();
/** Local endpoint on the client -> target in the server namespace; `allowed` says whether the server's --allow names it. */
const FORWARDS = [
  { local: '127.0.0.1:30001', target: '127.0.0.1:5301', bind: '127.0.0.1:5301', allowed: true },
  { local: '127.0.0.1:30002', target: 'localhost:5302', bind: '127.0.0.1:5302', allowed: true },
  { local: '127.0.0.1:30003', target: '127.0.0.1:5303', bind: '127.0.0.1:5303', allowed: false },
];
let taddrEcho: Proc;
const echoes: Proc[] = [];
let server: Proc;
let client: Proc;

before(topo.guard(async () => {
  await topo.up();
  taddrEcho = await startUdpEcho(topo);
  for (const f of FORWARDS) echoes.push(await startUdpEcho(topo, f.bind, 'server', `udp-echo-${f.bind.split(':')[1]}`));
  ({ server, client } = await startTunnel(topo, {
    server: { extra: FORWARDS.filter((f) => f.allowed).map((f) => `--allow=${f.target}`) },
    client: { extra: FORWARDS.map((f) => `--forward=${f.local}=${f.target}`) },
  }));
  assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo on --ludp within 10 s');
}));
after(() => topo.destroy());

const delta = (a: EchoTargetStats, b: EchoTargetStats) => b.echoed - a.echoed;

test('--ludp and two forwards: each answered by its own target on its own local endpoint, contents checked', { timeout: 90_000 }, topo.guard(async () => {
  for (const f of FORWARDS.filter((x) => x.allowed)) assert.ok((await untilEcho(topo, 10_000, 50, f.local)).ok, `no echo on ${f.local}`);
  const before = [await echoTargetStats(taddrEcho), ...(await Promise.all(echoes.map(echoTargetStats)))];
  const endpoints = ['127.0.0.1:30000', FORWARDS[0].local, FORWARDS[1].local];
  // At once, so that the three flows share the connections.
  const runs = await Promise.all(endpoints.map((to) => udpEcho(topo, { to, count: 300, min: 16, max: 3000, rate: 300 })));
  const after = [await echoTargetStats(taddrEcho), ...(await Promise.all(echoes.map(echoTargetStats)))];
  runs.forEach((r, i) => console.log(`forwards: ${endpoints[i]}: ${JSON.stringify(r)}`));
  console.log(`forwards: datagrams echoed per target (--taddr, 5301, 5302, 5303): ${before.map((b, i) => delta(b, after[i])).join(', ')}`);
  for (const [i, r] of runs.entries()) {
    // udp-probe counts an answer with another sender's tag or contents as bad: a datagram that crossed to another forward would show here.
    assert.equal(r.bad, 0, `${endpoints[i]}: an answer came back changed or from another flow`);
    assert.ok(r.received >= 297, `${endpoints[i]}: ${r.received}/300 answered`);
  }
  for (let i = 0; i < 3; i++) {
    const d = delta(before[i], after[i]);
    assert.ok(d >= 297 && d <= 300, `target ${i}: echoed ${d}, expected its own 300 only`);
  }
}));

test('a forward to a target not in --allow gets nothing, and the refusal is logged once', { timeout: 60_000 }, topo.guard(async () => {
  const denied = FORWARDS[2];
  const before = await echoTargetStats(echoes[2]);
  const r = await udpEcho(topo, { to: denied.local, count: 50, rate: 100, waitMs: 2000 });
  const r2 = await udpEcho(topo, { to: denied.local, count: 50, rate: 100, waitMs: 2000 });
  const after = await echoTargetStats(echoes[2]);
  console.log(`forwards: refused forward: ${JSON.stringify(r)}; the target saw ${after.echoed + after.sunk - before.echoed - before.sunk}`);
  assert.equal(r.received + r2.received, 0, 'an answer came back through a refused forward');
  assert.equal(after.echoed + after.sunk, before.echoed + before.sunk, 'the target not allowed got datagrams');
  const refusal = linesMatching(client, /127\.0\.0\.1:30003 -> 127\.0\.0\.1:5303: refused by the server/);
  assert.equal(refusal.length, 1, `the client says once that the server refused the forward:\n${client.tail()}`);
  const flows = linesMatching(client, /to 127\.0\.0\.1:30003 -> 127\.0\.0\.1:5303: dropped/);
  assert.equal(flows.length, 2, `one line per refused flow (two probe runs, two flows):\n${flows.join('\n')}`);
  assert.equal(linesMatching(client, /30001 -> 127\.0\.0\.1:5301: allowed/).length, 1);
  assert.match(server.output(), /forwards allowed to 127\.0\.0\.1:5301, localhost:5302/);
}));
