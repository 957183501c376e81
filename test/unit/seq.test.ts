import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seqAdd, seqDiff, seqMax } from '../../src/core/seq';

test('sequence arithmetic wraps at 2^32', () => {
  assert.equal(seqAdd(0xfffffff0, 0x20), 0x10);
  assert.equal(seqDiff(0x10, 0xfffffff0), 0x20);
  assert.equal(seqDiff(0xfffffff0, 0x10), -0x20);
  assert.ok(seqDiff(0xfffffff0, 0x10) < 0);
  assert.ok(seqDiff(0x10, 0xfffffff0) > 0);
  assert.equal(seqMax(0xfffffff0, 0x10), 0x10);
  assert.equal(seqMax(5, 3), 5);
});

test('distances near the half-circle keep their sign', () => {
  assert.equal(seqDiff(0x7fffffff, 0), 0x7fffffff);
  assert.equal(seqDiff(0x80000000, 0), -0x80000000);
  assert.equal(seqMax(0xfffffffe, 0x5), 0x5);
  assert.equal(seqMax(0x5, 0x80000006), 0x5);
});
