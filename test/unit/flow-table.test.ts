import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Flow, FlowTable } from '../../src/core/flow-table';

test('expires flows idle for the duration, keeps touched ones', () => {
  const t = new FlowTable<string, Flow>(30000);
  t.set('a', { id: 1, lastActive: 0 });
  t.set('b', { id: 2, lastActive: 0 });
  const expired: string[] = [];
  const push = (k: string) => void expired.push(k);
  t.sweep(29999, 100, push);
  assert.deepEqual(expired, []);
  t.get('b')!.lastActive = 29000; // traffic in either direction touches the flow
  t.sweep(30000, 100, push);
  t.sweep(30000, 100, push);
  assert.deepEqual(expired, ['a']);
  assert.equal(t.size, 1);
  t.sweep(59000, 100, push);
  t.sweep(59000, 100, push);
  assert.deepEqual(expired, ['a', 'b']);
  assert.equal(t.size, 0);
});

test('a sweep does bounded work and resumes where it stopped', () => {
  const t = new FlowTable<number, Flow>(1000);
  for (let i = 0; i < 10000; i++) t.set(i, { id: i, lastActive: 0 });
  let total = 0;
  let calls = 0;
  while (t.size > 0 && calls < 1000) {
    const n = t.sweep(5000, 300, () => undefined);
    assert.ok(n <= 300, `one sweep expired ${n} > budget`);
    total += n;
    calls++;
  }
  assert.equal(total, 10000);
  assert.ok(calls >= 34 && calls <= 40, `took ${calls} sweeps`);
});
