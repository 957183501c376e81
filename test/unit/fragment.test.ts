import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAG_HEADER, Reassembly, writeFragHeader } from '../../src/core/fragment';

function frag(id: number, index: number, count: number, body: Buffer): Buffer {
  const b = Buffer.alloc(FRAG_HEADER + body.length);
  writeFragHeader(b, 0, id, index, count);
  body.copy(b, FRAG_HEADER);
  return b;
}
const pieces = (d: Buffer, n: number) => Array.from({ length: Math.ceil(d.length / n) }, (_, i) => d.subarray(i * n, (i + 1) * n));

test('fragments in any order, with duplicates, give back the datagram once', () => {
  const r = new Reassembly();
  const d = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff));
  const ps = pieces(d, 1400);
  const order = [2, 0, 3, 0, 1];
  const out = order.map((i) => r.add(1, 7, frag(1, i, ps.length, ps[i]), 0, FRAG_HEADER + ps[i].length, 0));
  assert.deepEqual(out.slice(0, 4), [null, null, null, null]);
  assert.ok(out[4]!.equals(d));
  assert.equal(r.held, 0);
  assert.equal(r.add(1, 7, frag(1, 3, ps.length, ps[3]), 0, FRAG_HEADER + ps[3].length, 0), null, 'a late duplicate starts nothing whole');
});

test('flows and ids keep datagrams apart; a lost fragment loses only its datagram, which times out', () => {
  const r = new Reassembly({ maxBytes: 1 << 20, maxPerFlow: 8, timeoutMs: 1000 });
  const a = Buffer.alloc(3000, 1);
  const b = Buffer.alloc(3000, 2);
  const pa = pieces(a, 1000);
  const pb = pieces(b, 1000);
  r.add(1, 1, frag(5, 0, 3, pa[0]), 0, 1004, 0);
  r.add(1, 2, frag(5, 0, 3, pb[0]), 0, 1004, 0);
  r.add(1, 1, frag(5, 1, 3, pa[1]), 0, 1004, 0); // pa[2] is lost
  r.add(1, 2, frag(5, 1, 3, pb[1]), 0, 1004, 0);
  assert.ok(r.add(1, 2, frag(5, 2, 3, pb[2]), 0, 1004, 1)!.equals(b));
  assert.equal(r.held, 2000);
  r.sweep(999);
  assert.equal(r.held, 2000);
  r.sweep(1000);
  assert.equal(r.held, 0);
  assert.equal(r.stats.expired, 1);
});

test('memory is bounded per flow and in total; malformed fragments are refused', () => {
  const r = new Reassembly({ maxBytes: 10_000, maxPerFlow: 3, timeoutMs: 1000 });
  const body = Buffer.alloc(1000, 9);
  for (let id = 0; id < 20; id++) r.add(1, 1, frag(id, 0, 4, body), 0, 1004, 0);
  assert.equal(r.held, 3000, 'three incomplete datagrams for one flow at most');
  for (let flow = 10; flow < 40; flow++) r.add(1, flow, frag(0, 0, 4, body), 0, 1004, 0);
  assert.ok(r.held <= 10_000, `held ${r.held}`);
  assert.ok(r.stats.evicted >= 17 + 20);
  for (const bad of [frag(1, 0, 1, body), frag(1, 4, 4, body), frag(1, 0, 4, Buffer.alloc(0)), Buffer.alloc(3)]) {
    assert.equal(r.add(1, 99, bad, 0, bad.length, 0), null);
  }
  assert.equal(r.stats.malformed, 4);
});

test('the same flow and datagram id on two connections (two clients) never mix', () => {
  const r = new Reassembly();
  const a = Buffer.alloc(2000, 0xaa);
  const b = Buffer.alloc(2000, 0xbb);
  assert.equal(r.add(1, 1, frag(0, 0, 2, a.subarray(0, 1000)), 0, 1004, 0), null);
  assert.equal(r.add(2, 1, frag(0, 0, 2, b.subarray(0, 1000)), 0, 1004, 0), null);
  assert.ok(r.add(2, 1, frag(0, 1, 2, b.subarray(1000)), 0, 1004, 0)!.equals(b));
  assert.ok(r.add(1, 1, frag(0, 1, 2, a.subarray(1000)), 0, 1004, 0)!.equals(a));
});
