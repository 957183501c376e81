// The engine's tick pace (src/tunnel/ticker.ts) on the in-memory tunnel: an idle tunnel wakes each end
// about 10 times a second, not 100; input brings the fine pace back at once, so an ACK owed after an
// idle spell still leaves within the ACK delay; and a redial after the server's restart still runs at
// the fine pace.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { ACK_DELAY_MS } from '../../src/core/fake-tcp';
import { FINE_TICK_MS, IDLE_TICK_MS } from '../../src/tunnel/ticker';
import { sodiumCrypto } from '../sim/crypto';
import { SimTunnel } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

test('an idle tunnel ticks each end about 10 times a second, keepalives and all', async () => {
  const t = new SimTunnel(crypto).up();
  t.run(1000);
  const [c0, s0] = [t.clientIo.timersArmed, t.serverIo.timersArmed];
  t.net.wire = [];
  t.run(10_000);
  const [c, s] = [t.clientIo.timersArmed - c0, t.serverIo.timersArmed - s0];
  // 100 at the slow pace, plus a few fine ticks after each keepalive (3 connections, one every 2 s).
  assert.ok(c >= 10_000 / IDLE_TICK_MS && c <= 250, `client ticks in 10 s idle: ${c}`);
  assert.ok(s >= 10_000 / IDLE_TICK_MS && s <= 250, `server ticks in 10 s idle: ${s}`);
  // The keepalives still go out on time and are answered: 3 connections x 5 in 10 s.
  const pings = t.net.wire.filter((w) => w.from === 'client' && w.seg && w.seg.wireLen > 0).length;
  const pongs = t.net.wire.filter((w) => w.from === 'server' && w.seg && w.seg.wireLen > 0).length;
  assert.ok(pings >= 14 && pings <= 16 && pongs === pings, `keepalives ${pings}, answers ${pongs}`);
  assert.equal(t.client.liveConnections, 3);
  await t.stop();
});

test('after an idle spell, data that draws no reply is acknowledged within the ACK delay', async () => {
  const t = new SimTunnel(crypto).up();
  t.echo.echo = false;
  const app = t.app();
  for (let round = 0; round < 5; round++) {
    t.run(1000 + 137 * round); // idle, at the slow pace, and at a different phase of its tick each round
    t.net.wire = [];
    t.send(app, Buffer.alloc(200, round));
    t.run(200);
    const data = t.net.wire.find((w) => w.from === 'client' && w.seg && w.seg.wireLen >= 200);
    assert.ok(data?.seg, `round ${round}: the datagram's segment`);
    const end = (data.seg.seq + data.seg.wireLen) >>> 0;
    const acked = t.net.wire.find((w) => w.from === 'server' && w.at >= data.at && w.seg?.dstPort === data.seg!.srcPort && w.seg.ack === end);
    assert.ok(acked, `round ${round}: no ACK of the datagram's segment within 200 ms`);
    assert.ok(acked.at - data.at <= ACK_DELAY_MS + FINE_TICK_MS, `round ${round}: acknowledged after ${acked.at - data.at} ms`);
  }
  assert.ok(t.echo.received.length === 5);
  await t.stop();
});

test('a client whose server restarted redials at the fine pace', async () => {
  const t = new SimTunnel(crypto).up();
  t.run(3000);
  t.serverIo.kill();
  t.startServer();
  // The client finds out from silence (or an RST), then redials; each step of the redial runs on fine
  // ticks. Until it finds out, every connection still looks live, and the slow pace is right: counted
  // with the redial, that spell made the ratio depend on the random backoff (0.77-0.95 in 400 runs).
  const took = t.net.time.runUntil(() => t.client.liveConnections === 0, 20_000);
  assert.ok(took >= 0, 'the client never noticed the restart');
  const armed0 = t.clientIo.timersArmed;
  const back = t.net.time.runUntil(() => t.client.liveConnections === 3, 20_000, 5);
  assert.ok(back >= 0, 'the client did not reconnect');
  const armed = t.clientIo.timersArmed - armed0;
  assert.ok(armed >= 0.8 * (back / FINE_TICK_MS), `${armed} ticks over ${back} ms of redial`);
  await t.stop();
});
