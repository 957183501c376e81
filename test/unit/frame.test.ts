import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameRef, FrameType, HEADER, splitFrames, writeHeader } from '../../src/core/frame';

function frames(payloads: Buffer[]): Buffer {
  const parts = payloads.map((p, i) => {
    const b = Buffer.alloc(HEADER + p.length);
    writeHeader(b, 0, FrameType.Data, 100 + i, p.length);
    p.copy(b, HEADER);
    return b;
  });
  return Buffer.concat(parts);
}

function split(buf: Buffer, off = 0, len = buf.length) {
  const out: { type: number; arg: number; payload: string }[] = [];
  const ref: FrameRef = { off: 0, type: 0, arg: 0, payloadOff: 0, payloadLen: 0 };
  const n = splitFrames(buf, off, len, (f) => out.push({ type: f.type, arg: f.arg, payload: buf.toString('utf8', f.payloadOff, f.payloadOff + f.payloadLen) }), ref);
  return { n, out };
}

test('one frame and GRO-merged frames split exactly', () => {
  const one = split(frames([Buffer.from('hello')]));
  assert.equal(one.n, 1);
  assert.deepEqual(one.out, [{ type: FrameType.Data, arg: 100, payload: 'hello' }]);
  const merged = frames([Buffer.from('a'), Buffer.alloc(0), Buffer.from('x'.repeat(1400)), Buffer.from('zz')]);
  const r = split(merged);
  assert.equal(r.n, 4);
  assert.deepEqual(r.out.map((f) => f.arg), [100, 101, 102, 103]);
  assert.equal(r.out[2].payload.length, 1400);
  assert.equal(r.out[3].payload, 'zz');
});

test('truncated or garbage payloads are rejected whole', () => {
  const b = frames([Buffer.from('hello'), Buffer.from('world')]);
  assert.equal(split(b, 0, b.length - 1).n, -1);
  assert.equal(split(b, 0, HEADER - 1).n, -1);
  const g = Buffer.from(b);
  g.writeUInt16BE(0xffff, 8);
  assert.equal(split(g).n, -1);
  assert.equal(split(Buffer.from('random junk that is long enough')).n, -1);
});

test('splits a frame run that starts inside a larger buffer', () => {
  const f = frames([Buffer.from('abc')]);
  const b = Buffer.concat([Buffer.from('IPTCPHDR'), f]);
  const r = split(b, 8, f.length);
  assert.deepEqual(r.out, [{ type: FrameType.Data, arg: 100, payload: 'abc' }]);
});
