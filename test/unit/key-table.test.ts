// The key table: slots handed out and reused, keys at the offsets the addon reads, growth that keeps
// every live slot's keys, and caller bugs (double free, write to a freed slot) refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEY_SLOT } from '../../src/core/crypto';
import { KeyTable } from '../../src/core/key-table';

/** Three recognisable keys for slot `n`: every byte says which slot and which key it belongs to. */
function keysFor(n: number) {
  return {
    mask: Buffer.alloc(32, (n * 3 + 1) & 0xff),
    mac: Buffer.alloc(16, (n * 3 + 2) & 0xff),
    aead: Buffer.alloc(32, (n * 3 + 3) & 0xff),
  };
}

function slotOf(t: KeyTable, slot: number): Buffer {
  return t.buffer.subarray(slot * KEY_SLOT.BYTES, (slot + 1) * KEY_SLOT.BYTES);
}

function assertHolds(t: KeyTable, slot: number, n: number): void {
  const k = keysFor(n);
  const s = slotOf(t, slot);
  assert.deepEqual(s.subarray(KEY_SLOT.MASK, KEY_SLOT.MASK + 32), k.mask, `slot ${slot} MASK`);
  assert.deepEqual(s.subarray(KEY_SLOT.MAC, KEY_SLOT.MAC + 16), k.mac, `slot ${slot} MAC`);
  assert.deepEqual(s.subarray(KEY_SLOT.AEAD, KEY_SLOT.AEAD + 32), k.aead, `slot ${slot} AEAD`);
}

test('key table: write() puts MASK, MAC and AEAD at their KEY_SLOT offsets, touching no other slot', () => {
  const t = new KeyTable(4);
  const slots = [t.allocate(), t.allocate(), t.allocate()];
  assert.deepEqual(slots, [0, 1, 2]);
  const k = keysFor(1);
  t.write(1, k.mask, k.mac, k.aead);
  assertHolds(t, 1, 1);
  assert.ok(slotOf(t, 0).every((b) => b === 0), 'slot 0 untouched');
  assert.ok(slotOf(t, 2).every((b) => b === 0), 'slot 2 untouched');
  assert.equal(t.buffer.length, 4 * KEY_SLOT.BYTES);
});

test('key table: freed slots are zeroed and reused before the table grows', () => {
  const t = new KeyTable(2);
  const a = t.allocate();
  const b = t.allocate();
  const k = keysFor(7);
  t.write(a, k.mask, k.mac, k.aead);
  t.write(b, k.mask, k.mac, k.aead);
  t.free(a);
  assert.ok(slotOf(t, a).every((x) => x === 0), 'a freed slot holds no key bytes');
  assertHolds(t, b, 7);
  assert.equal(t.size, 1);
  const before = t.buffer;
  assert.equal(t.allocate(), a, 'the free slot comes back');
  assert.equal(t.buffer, before, 'no growth while a slot was free');
  assert.equal(t.capacity, 2);
  assert.equal(t.size, 2);
});

test('key table: growth keeps every slot\'s keys at the same index, and replaces the buffer', () => {
  const t = new KeyTable(1);
  const n = 37;
  const old: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const slot = t.allocate();
    assert.equal(slot, i);
    const k = keysFor(i);
    t.write(slot, k.mask, k.mac, k.aead);
    old.push(t.buffer);
  }
  assert.ok(t.capacity >= n);
  assert.equal(t.buffer.length, t.capacity * KEY_SLOT.BYTES, 'the buffer holds whole slots only');
  assert.ok(new Set(old).size > 1, 'the buffer was replaced at least once');
  for (let i = 0; i < n; i++) assertHolds(t, i, i);
  // Free a few in the middle, then allocate: their indices come back, the others keep their keys.
  for (const i of [3, 20, 36]) t.free(i);
  const again = [t.allocate(), t.allocate(), t.allocate()].sort((x, y) => x - y);
  assert.deepEqual(again, [3, 20, 36]);
  for (let i = 0; i < n; i++) if (![3, 20, 36].includes(i)) assertHolds(t, i, i);
  assert.equal(t.size, n);
});

test('key table: caller bugs throw instead of touching another slot', () => {
  const t = new KeyTable(2);
  const s = t.allocate();
  const k = keysFor(0);
  assert.throws(() => t.write(s, Buffer.alloc(31), k.mac, k.aead), /mask key must be 32 bytes/);
  assert.throws(() => t.write(s, k.mask, Buffer.alloc(32), k.aead), /mac key must be 16 bytes/);
  assert.throws(() => t.write(s, k.mask, k.mac, Buffer.alloc(16)), /aead key must be 32 bytes/);
  assert.ok(slotOf(t, s).every((b) => b === 0), 'nothing written by a refused write');
  assert.throws(() => t.write(1, k.mask, k.mac, k.aead), /slot 1 is not allocated/);
  assert.throws(() => t.free(5), RangeError);
  assert.throws(() => t.free(-1), RangeError);
  assert.throws(() => t.free(0.5), RangeError);
  t.free(s);
  assert.throws(() => t.free(s), /slot 0 is not allocated/, 'double free');
  assert.throws(() => t.write(s, k.mask, k.mac, k.aead), /not allocated/, 'write after free');
  assert.equal(t.size, 0);
  assert.throws(() => new KeyTable(0), RangeError);
});
