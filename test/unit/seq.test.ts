import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seqAdd, seqDiff, seqInWindow, seqLt, seqMax } from '../../src/core/seq';

test('sequence arithmetic wraps at 2^32', () => {
  assert.equal(seqAdd(0xfffffff0, 0x20), 0x10);
  assert.equal(seqDiff(0x10, 0xfffffff0), 0x20);
  assert.equal(seqDiff(0xfffffff0, 0x10), -0x20);
  assert.ok(seqLt(0xfffffff0, 0x10));
  assert.ok(!seqLt(0x10, 0xfffffff0));
  assert.equal(seqMax(0xfffffff0, 0x10), 0x10);
  assert.equal(seqMax(5, 3), 5);
});

test('window membership across the wrap', () => {
  assert.ok(seqInWindow(0x5, 0xfffffffe, 10));
  assert.ok(!seqInWindow(0xfffffffd, 0xfffffffe, 10));
  assert.ok(!seqInWindow(0x8, 0xfffffffe, 10));
  assert.ok(seqInWindow(0xfffffffe, 0xfffffffe, 1));
});
