import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACK_DELAY_MS, ACK_EVERY_SEGMENTS, FakeTcp, OutSegment, TcpState, WINDOW_FIELD } from '../../src/core/fake-tcp';
import { emptyOut } from '../../src/core/out-segment';
import { ACK, emptySegment, FIN, PSH, RST, Segment } from '../../src/core/packet';

function conn(sndNxt: number, rcvNxt: number): FakeTcp {
  return new FakeTcp({ local: { ip: 1, port: 40000 }, remote: { ip: 2, port: 10001 }, sndNxt, rcvNxt, now: 0 });
}
function seg(fields: Partial<Segment>): Segment {
  const s = { ...emptySegment(), flags: ACK | PSH, ...fields };
  if (fields.wireLen === undefined) s.wireLen = s.payloadLen;
  return s;
}
const out = (): OutSegment => emptyOut();

test('data segments carry consecutive seqs across the 2^32 wrap, with our latest ack and the big window', () => {
  const c = conn(0xfffffff0, 1000);
  const o = out();
  c.nextData(10, 0, o);
  assert.deepEqual([o.seq, o.ack, o.flags, o.window], [0xfffffff0, 1000, ACK | PSH, WINDOW_FIELD]);
  c.nextData(100, 0, o);
  assert.equal(o.seq, 0xfffffffa);
  c.nextData(1, 0, o);
  assert.equal(o.seq, 0x5e);
  assert.equal(c.sndNxt, 0x5f);
});

test('ack follows verified data across the wrap and never moves back', () => {
  const c = conn(1, 0xffffff00);
  const s1 = seg({ seq: 0xffffff00, payloadLen: 0x200 });
  assert.equal(c.onSegment(s1, 1), 'data');
  c.acceptData(s1, 1);
  assert.equal(c.rcvNxt, 0x100);
  // A reordered, older segment does not pull the ack back.
  const old = seg({ seq: 0xffffff00, payloadLen: 0x10 });
  assert.equal(c.onSegment(old, 2), 'data');
  c.acceptData(old, 2);
  assert.equal(c.rcvNxt, 0x100);
  const o = out();
  c.pureAck(3, o);
  assert.equal(o.ack, 0x100);
  assert.equal(o.flags, ACK);
});

test('a segment far outside the window is ignored and does not count as data', () => {
  const c = conn(1, 5000);
  assert.equal(c.onSegment(seg({ seq: 5000 + 1_000_000_000, payloadLen: 100 }), 1), 'ignore');
  assert.equal(c.rcvNxt, 5000);
});

test('pure ACK cadence: after 32 segments at once, or after 20 ms for a lone segment', () => {
  const c = conn(1, 0);
  let seq = 0;
  for (let i = 0; i < ACK_EVERY_SEGMENTS - 1; i++) {
    const s = seg({ seq, payloadLen: 100 });
    seq += 100;
    c.onSegment(s, 0);
    c.acceptData(s, 0);
  }
  assert.equal(c.ackDue(0), false);
  const s = seg({ seq, payloadLen: 100 });
  c.acceptData(s, 0);
  assert.equal(c.ackDue(0), true);
  c.pureAck(0, out());
  assert.equal(c.ackDue(1000), false, 'nothing unacked after the ACK');
  c.acceptData(seg({ seq: seq + 100, payloadLen: 10 }), 100);
  assert.equal(c.ackDue(100 + ACK_DELAY_MS - 1), false);
  assert.equal(c.ackDue(100 + ACK_DELAY_MS), true);
  // Our own data segment carries the ack and clears the debt.
  c.nextData(50, 200, out());
  assert.equal(c.ackDue(500), false);
});

test('RST near the expected seq resets; a blind RST far away is ignored', () => {
  const c = conn(1, 70000);
  assert.equal(c.onSegment(seg({ seq: 70000 + 2_000_000_000, flags: RST }), 1), 'ignore');
  assert.equal(c.state, TcpState.Established);
  assert.equal(c.onSegment(seg({ seq: 70000, flags: RST | ACK }), 1), 'reset');
  assert.equal(c.state, TcpState.Closed);
  assert.equal(c.open, false);
  assert.equal(c.onSegment(seg({ seq: 70000, payloadLen: 10 }), 2), 'ignore', 'nothing after a reset');
});

test('FIN from the peer moves to CLOSE_WAIT and our FIN closes; our FIN first waits for theirs', () => {
  const a = conn(100, 500);
  assert.equal(a.onSegment(seg({ seq: 500, flags: FIN | ACK }), 1), 'fin');
  assert.equal(a.state, TcpState.CloseWait);
  assert.equal(a.rcvNxt, 501);
  const o = out();
  a.fin(2, o);
  assert.deepEqual([o.seq, o.ack, o.flags, o.window], [100, 501, FIN | ACK, WINDOW_FIELD]);
  assert.equal(a.state, TcpState.Closed);

  const b = conn(100, 500);
  b.fin(1, o);
  assert.equal(b.state, TcpState.FinWait);
  assert.equal(b.sndNxt, 101);
  assert.equal(b.onSegment(seg({ seq: 500, flags: FIN | ACK }), 2), 'fin');
  assert.equal(b.state, TcpState.Closed);
});

test('RFC 5961: only an RST or FIN at exactly rcvNxt ends the connection; one in the window asks for a challenge ACK', () => {
  const c = new FakeTcp({ local: { ip: 1, port: 1 }, remote: { ip: 2, port: 2 }, sndNxt: 1, rcvNxt: 5000, now: 0, rcvWnd: 64256, rcvWscale: 7 });
  assert.equal(c.rcvWindowBytes, 64256 - (64256 % 128));
  assert.equal(c.onSegment(seg({ seq: 5001, flags: RST }), 1), 'challenge');
  assert.equal(c.onSegment(seg({ seq: 5000 + 60000, flags: RST }), 1), 'challenge');
  assert.equal(c.onSegment(seg({ seq: 5000 + 70000, flags: RST }), 1), 'ignore', 'beyond the advertised window');
  assert.equal(c.onSegment(seg({ seq: 4999, flags: RST }), 1), 'ignore', 'below the window');
  assert.equal(c.onSegment(seg({ seq: 5100, flags: FIN | ACK }), 1), 'challenge');
  assert.equal(c.state, TcpState.Established);
  assert.equal(c.challengeDue(10), true);
  assert.equal(c.challengeDue(400), false, 'at most one per 500 ms');
  assert.equal(c.challengeDue(510), true);
  assert.equal(c.onSegment(seg({ seq: 5000, flags: RST }), 1), 'reset');
});

test('segments carry the kernel timestamp clock, the peer TSval, a TTL and an IP id that counts up', () => {
  const c = new FakeTcp({ local: { ip: 1, port: 1 }, remote: { ip: 2, port: 2 }, sndNxt: 1, rcvNxt: 1, now: 1000, tsOk: true, tsVal: 0xfffffff0, tsRecent: 77, ttl: 61, ipId: 0xfffe });
  const o = out();
  c.nextData(10, 1000, o);
  assert.deepEqual([o.options, o.tsVal, o.tsEcr, o.ttl, o.ipId], [1, 0xfffffff0, 77, 61, 0xffff]);
  c.acceptData(seg({ seq: 1, payloadLen: 20, hasTs: true, tsVal: 555 }), 1030);
  c.pureAck(1030.7, o);
  assert.deepEqual([o.tsVal, o.tsEcr, o.ipId], [(0xfffffff0 + 30) >>> 0, 555, 0]);
  c.acceptData(seg({ seq: 1, payloadLen: 20, hasTs: true, tsVal: 999 }), 1040);
  assert.equal(c.tsRecent, 555, 'an old segment does not move TSecr');
  const n = new FakeTcp({ local: { ip: 1, port: 1 }, remote: { ip: 2, port: 2 }, sndNxt: 1, rcvNxt: 1, now: 0 });
  n.nextData(1, 0, o);
  assert.equal(o.options, 0, 'no timestamps unless the handshake negotiated them');
});

test('the advertised window starts at the kernel window and grows to the largest as we send', () => {
  const c = new FakeTcp({ local: { ip: 1, port: 1 }, remote: { ip: 2, port: 2 }, sndNxt: 1, rcvNxt: 1, now: 0, rcvWnd: 64256, rcvWscale: 7 });
  const o = out();
  const seen: number[] = [];
  for (let i = 0; i < 8; i++) {
    c.nextData(100, 0, o);
    seen.push(o.window);
  }
  assert.equal(seen[0], 502);
  assert.ok(seen.every((w, i) => i === 0 || w >= seen[i - 1]), `not growing: ${seen}`);
  assert.equal(seen.at(-1), WINDOW_FIELD);
  c.acceptData(seg({ seq: 1, payloadLen: 64000 }), 1);
  c.pureAck(1, o);
  assert.equal(o.window, WINDOW_FIELD - 500, 'unacknowledged bytes make it smaller');
});

test('stream offsets count every byte sent and received, across the wrap; a resend does not count', () => {
  const c = conn(0xfffffff0, 0xfffffff0);
  const o = out();
  c.nextData(100, 0, o);
  c.extend(20);
  assert.equal(c.sndOff, 120);
  c.resend(0xfffffff0, 0, o);
  assert.equal(o.seq, 0xfffffff0);
  assert.equal(c.sndOff, 120);
  c.acceptData(seg({ seq: 0xfffffff0, payloadLen: 0x30 }), 0);
  assert.equal(c.rcvOff, 0x30);
  assert.equal(c.rcvOffsetOf(0x20), 0x30);
  assert.equal(c.rcvOffsetOf(0xfffffff0), 0);
});

test("the handshake's SYN-ACK, captured late, gives the first TSecr; a SYN at another seq does not", () => {
  const c = conn(1, 1000);
  assert.equal(c.onSegment(seg({ seq: 5, flags: 0x12, hasTs: true, tsVal: 42 }), 0), 'ignore');
  assert.equal(c.tsKnown, false);
  assert.equal(c.onSegment(seg({ seq: 999, flags: 0x12, hasTs: true, tsVal: 4242 }), 0), 'ignore');
  assert.deepEqual([c.tsKnown, c.tsRecent], [true, 4242]);
  c.onSegment(seg({ seq: 999, flags: 0x12, hasTs: true, tsVal: 7 }), 0);
  assert.equal(c.tsRecent, 4242, 'only the first');
});
