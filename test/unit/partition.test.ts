// The server-class pinning of --workers (src/core/partition.ts): the Joined trailer, the flow hash
// and the live set a ClientPool picks from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeForwardAnswers, decodeForwardAnswers } from '../../src/core/forwards';
import { decodePartition, encodeJoinedPayload, flowClass, LiveSet, NO_PARTITION, portClass } from '../../src/core/partition';

const slot = (name: string) => ({ name, cls: -1, classes: 0 });

test('Joined payload: one worker is the wire of before, two or more add a trailer both kinds of client read', () => {
  assert.equal(encodeJoinedPayload(null, NO_PARTITION), null);
  assert.deepEqual(encodeJoinedPayload([true, false], NO_PARTITION), encodeForwardAnswers([true, false]));
  const bare = encodeJoinedPayload(null, { count: 2, index: 1 })!;
  assert.deepEqual([...bare], [0, 2, 1]);
  assert.deepEqual(decodePartition(bare, 0, bare.length), { count: 2, index: 1 });
  const withAnswers = encodeJoinedPayload([true, false, true], { count: 3, index: 2 })!;
  assert.deepEqual(decodeForwardAnswers(withAnswers, 0, withAnswers.length), [true, false, true], 'a client with forwards still reads its answers');
  assert.deepEqual(decodePartition(withAnswers, 0, withAnswers.length), { count: 3, index: 2 });
  // An older server: nothing, answers only, or the zeros that pad a tls record.
  assert.deepEqual(decodePartition(Buffer.alloc(0), 0, 0), NO_PARTITION);
  assert.deepEqual(decodePartition(encodeForwardAnswers([true]), 0, 2), NO_PARTITION);
  assert.deepEqual(decodePartition(Buffer.alloc(12), 0, 12), NO_PARTITION);
  assert.deepEqual(decodePartition(Buffer.from([0, 2, 2]), 0, 3), NO_PARTITION, 'a class out of range is no partition');
});

test('flow and port classes: fixed, in range, and spread', () => {
  const counts = [0, 0, 0];
  for (let id = 1; id <= 3000; id++) {
    const c = flowClass(id, 3);
    assert.equal(c, flowClass(id, 3));
    counts[c]++;
  }
  for (const n of counts) assert.ok(n > 850 && n < 1150, `uneven: ${counts}`);
  assert.equal(flowClass(12345, 1), 0);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => portClass(i, 2)), [0, 1, 0, 1, 0]);
});

test('LiveSet: a flow only ever gets connections of its class, round robin among them', () => {
  const live = new LiveSet<ReturnType<typeof slot>>();
  const a = slot('a'), b = slot('b'), c = slot('c'), d = slot('d');
  live.add(a, { count: 2, index: 0 });
  live.add(b, { count: 2, index: 1 });
  live.add(c, { count: 2, index: 0 });
  live.add(d, { count: 2, index: 1 });
  const flow0 = [...Array(100).keys()].find((id) => flowClass(id, 2) === 0)!;
  const flow1 = [...Array(100).keys()].find((id) => flowClass(id, 2) === 1)!;
  const got0 = Array.from({ length: 6 }, () => live.pick(flow0)!.name);
  const got1 = Array.from({ length: 6 }, () => live.pick(flow1)!.name);
  assert.deepEqual(new Set(got0), new Set(['a', 'c']));
  assert.deepEqual(new Set(got1), new Set(['b', 'd']));
  assert.equal(got0.filter((n) => n === 'a').length, 3, 'round robin within the class');
  // Class 1 goes down: its flows get nothing (they are dropped), class 0's are untouched.
  live.remove(b);
  live.remove(d);
  assert.equal(live.pick(flow1), undefined);
  assert.ok(['a', 'c'].includes(live.pick(flow0)!.name));
  assert.equal(live.size, 2);
});

test('LiveSet with one class is one round robin over everything; a new count re-sorts the connections', () => {
  const live = new LiveSet<ReturnType<typeof slot>>();
  const a = slot('a'), b = slot('b'), c = slot('c');
  live.add(a, NO_PARTITION);
  live.add(b, NO_PARTITION);
  assert.deepEqual([1, 2, 3, 4].map((id) => live.pick(id)!.name), ['a', 'b', 'a', 'b'], 'every flow over every connection, as before workers');
  // The server restarted with two workers: only connections joined under two classes carry data.
  live.add(c, { count: 2, index: 1 });
  assert.equal(live.classes, 2);
  const flow1 = [...Array(100).keys()].find((id) => flowClass(id, 2) === 1)!;
  const flow0 = [...Array(100).keys()].find((id) => flowClass(id, 2) === 0)!;
  assert.equal(live.pick(flow1)!.name, 'c');
  assert.equal(live.pick(flow0), undefined, 'a and b joined the old server: not class 0 of the new one');
  live.remove(a);
  live.remove(c);
  assert.equal(live.size, 1);
  live.clear();
  assert.equal(live.size, 0);
});
