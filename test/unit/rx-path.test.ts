// The receive path end to end on crafted packets, with libsodium's real SipHash (no root, no addon).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTcp } from '../../src/core/fake-tcp';
import { FrameType, HEADER, TAG_LEN, writeHeader } from '../../src/core/frame';
import { deriveKeys } from '../../src/core/keys';
import { ACK, PSH, RST } from '../../src/core/packet';
import type { Mac } from '../../src/core/mac';
import { ConnTable } from '../../src/tunnel/conn-table';
import { RxHandler, RxPath } from '../../src/tunnel/rx';
import { sodiumMac } from '../sim/mac';
import { buildTcp, packBatch } from '../sim/packet';

let mac: Mac;
let keys: ReturnType<typeof deriveKeys>;
before(async () => {
  mac = await sodiumMac();
  keys = deriveKeys(mac, 'unit-test-key');
});
const SERVER = 0x0a000002;
const CLIENT = 0x0a000001;

interface L {
  tcp: FakeTcp;
}

function frameBytes(type: FrameType, arg: number, payload: Buffer, key: Buffer): Buffer {
  const b = Buffer.alloc(HEADER + payload.length);
  writeHeader(b, 0, type, arg, payload.length);
  payload.copy(b, HEADER);
  mac.sign(key, b, new Uint32Array([TAG_LEN, b.length - TAG_LEN, 0]), 1);
  return b;
}

function ipTcp(seq: number, flags: number, payload: Buffer, srcPort = 10001, dstPort = 40000): Buffer {
  return buildTcp({ srcIp: SERVER, dstIp: CLIENT, srcPort, dstPort, seq, ack: 1, flags, window: 0xffff }, payload);
}

function batch(pkts: Buffer[]): [Buffer, Uint32Array, number] {
  const b = packBatch(pkts);
  return [b.data, b.meta, b.count];
}

function setup() {
  const links = new ConnTable<L>();
  const tcp = new FakeTcp({ local: { ip: CLIENT, port: 40000 }, remote: { ip: SERVER, port: 10001 }, sndNxt: 1, rcvNxt: 0xfffffff0, now: 0 });
  const link = { tcp };
  links.set(SERVER, 10001, 40000, link);
  const got: { type: number; arg: number; payload: string }[] = [];
  const ended: string[] = [];
  const h: RxHandler<L> = {
    onFrame: (_l, type, arg, buf, off, len) => got.push({ type, arg, payload: buf.toString('utf8', off, off + len) }),
    onTcpEnd: (_l, v) => ended.push(v),
  };
  const rx = new RxPath(links, mac, keys.serverToClient, h);
  return { rx, tcp, got, ended };
}

test('GRO-merged segment: every frame delivered, ack advances past the wrap', () => {
  const { rx, tcp, got } = setup();
  const payload = Buffer.concat([
    frameBytes(FrameType.Data, 7, Buffer.from('one'), keys.serverToClient),
    frameBytes(FrameType.Data, 8, Buffer.from('two'), keys.serverToClient),
    frameBytes(FrameType.Pong, 9, Buffer.alloc(0), keys.serverToClient),
  ]);
  rx.handle(...batch([ipTcp(0xfffffff0, ACK | PSH, payload)]), 5);
  assert.deepEqual(got, [
    { type: FrameType.Data, arg: 7, payload: 'one' },
    { type: FrameType.Data, arg: 8, payload: 'two' },
    { type: FrameType.Pong, arg: 9, payload: '' },
  ]);
  assert.equal(tcp.rcvNxt, (0xfffffff0 + payload.length) >>> 0);
  assert.equal(tcp.lastRecvAt, 5);
});

test('forged, wrong-direction and truncated frames are dropped and do not move the ack', () => {
  const { rx, tcp, got } = setup();
  const good = frameBytes(FrameType.Data, 1, Buffer.from('hello'), keys.serverToClient);
  const forged = Buffer.from(good);
  forged[HEADER] ^= 1;
  const reflected = frameBytes(FrameType.Data, 1, Buffer.from('hello'), keys.clientToServer);
  const wrongKey = frameBytes(FrameType.Data, 1, Buffer.from('hello'), deriveKeys(mac, 'other').serverToClient);
  const truncated = good.subarray(0, good.length - 2);
  rx.handle(...batch([ipTcp(0xfffffff0, ACK | PSH, forged), ipTcp(0xfffffff0, ACK | PSH, reflected), ipTcp(0xfffffff0, ACK | PSH, wrongKey), ipTcp(0xfffffff0, ACK | PSH, truncated)]), 1);
  assert.deepEqual(got, []);
  assert.equal(tcp.rcvNxt, 0xfffffff0);
  assert.equal(rx.stats.forged, 3);
  assert.equal(rx.stats.malformed, 1);
  assert.equal(tcp.ackDue(1000), false, 'forged data creates no ACK debt');
});

test('packets for unknown connections and non-TCP junk are counted and ignored', () => {
  const { rx, got } = setup();
  const f = frameBytes(FrameType.Data, 1, Buffer.from('x'), keys.serverToClient);
  const junk = Buffer.from('definitely not an ip packet, just bytes....');
  rx.handle(...batch([ipTcp(0xfffffff0, ACK | PSH, f, 10002), junk]), 1);
  assert.equal(got.length, 0);
  assert.equal(rx.stats.unknown, 2);
});

test('an in-window RST ends the connection; a blind one does not', () => {
  const { rx, tcp, ended } = setup();
  rx.handle(...batch([ipTcp(0x40000000, RST, Buffer.alloc(0))]), 1);
  assert.deepEqual(ended, []);
  assert.ok(tcp.open);
  rx.handle(...batch([ipTcp(0xfffffff0, RST | ACK, Buffer.alloc(0))]), 2);
  assert.deepEqual(ended, ['reset']);
  assert.equal(tcp.open, false);
});

test('a segment cut short by the capture keeps its whole frames and is acked to its wire length', () => {
  const { rx, tcp, got } = setup();
  const payload = Buffer.concat([
    frameBytes(FrameType.Data, 1, Buffer.from('first'), keys.serverToClient),
    frameBytes(FrameType.Data, 2, Buffer.alloc(300, 0x61), keys.serverToClient),
  ]);
  const pkt = ipTcp(0xfffffff0, ACK | PSH, payload);
  const cut = pkt.subarray(0, 40 + HEADER + 5 + 100);
  rx.handle(...batch([cut]), 1);
  assert.deepEqual(got, [{ type: FrameType.Data, arg: 1, payload: 'first' }]);
  assert.equal(rx.stats.truncated, 1);
  assert.equal(tcp.rcvNxt, (0xfffffff0 + payload.length) >>> 0);
});
