// Datagrams of any size through the strict router (issue 8, first step): what does not fit one segment
// is carried as fragments in consecutive segments and comes out whole, byte for byte, with 0 INVALID.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { startTunnel } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

const topo = new Topology();
before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  await startTunnel(topo);
  assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo within 10 s');
}));
after(() => topo.destroy());

for (const [min, max] of [[1400, 1500], [1500, 9000], [60000, 65507]]) {
  test(`datagrams of ${min}..${max} bytes are echoed whole (>= 99 %, contents checked)`, { timeout: 90_000 }, topo.guard(async () => {
    const r = await udpEcho(topo, { count: 200, min, max, rate: 200 });
    console.log(`big datagrams ${min}..${max}: ${JSON.stringify(r)}`);
    assert.equal(r.bad, 0, 'a datagram came back changed');
    assert.ok(r.received >= 198, `${r.received}/200 echoed`);
  }));
}

test('no INVALID drops on the router over the fragmented transfers', topo.guard(async () => {
  const c = await topo.readNftCounters();
  assert.ok(c.tcp_c2s.packets > 10_000, `only ${c.tcp_c2s.packets} segments went through`);
  assert.equal(c.invalid_drops.packets, 0);
}));
