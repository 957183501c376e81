import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACK_DELAY_MS, ACK_EVERY_SEGMENTS, FakeTcp, OutSegment, TcpState, WINDOW_FIELD } from '../../src/core/fake-tcp';
import { ACK, emptySegment, FIN, PSH, RST, Segment } from '../../src/core/packet';

function conn(sndNxt: number, rcvNxt: number): FakeTcp {
  return new FakeTcp({ local: { ip: 1, port: 40000 }, remote: { ip: 2, port: 10001 }, sndNxt, rcvNxt, now: 0 });
}
function seg(fields: Partial<Segment>): Segment {
  const s = { ...emptySegment(), flags: ACK | PSH, ...fields };
  if (fields.wireLen === undefined) s.wireLen = s.payloadLen;
  return s;
}
const out = (): OutSegment => ({ seq: 0, ack: 0, flags: 0, window: 0 });

test('data segments carry consecutive seqs across the 2^32 wrap, with our latest ack and the big window', () => {
  const c = conn(0xfffffff0, 1000);
  const o = out();
  c.nextData(10, 0, o);
  assert.deepEqual(o, { seq: 0xfffffff0, ack: 1000, flags: ACK | PSH, window: WINDOW_FIELD });
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
  assert.deepEqual(o, { seq: 100, ack: 501, flags: FIN | ACK, window: WINDOW_FIELD });
  assert.equal(a.state, TcpState.Closed);

  const b = conn(100, 500);
  b.fin(1, o);
  assert.equal(b.state, TcpState.FinWait);
  assert.equal(b.sndNxt, 101);
  assert.equal(b.onSegment(seg({ seq: 500, flags: FIN | ACK }), 2), 'fin');
  assert.equal(b.state, TcpState.Closed);
});
