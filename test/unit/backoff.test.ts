import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../src/core/backoff';

test('doubles up to the cap and never gives up', () => {
  const b = new Backoff({ firstMs: 200, maxMs: 10000, jitter: 0, random: () => 0.5 });
  const seen = Array.from({ length: 10 }, () => b.next());
  assert.deepEqual(seen, [200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000, 10000]);
  for (let i = 0; i < 1000; i++) assert.equal(b.next(), 10000);
  assert.equal(b.failures, 1010);
  b.reset();
  assert.equal(b.next(), 200);
});

test('jitter stays within the configured fraction', () => {
  const lo = new Backoff({ firstMs: 1000, maxMs: 1000, jitter: 0.2, random: () => 0 });
  const hi = new Backoff({ firstMs: 1000, maxMs: 1000, jitter: 0.2, random: () => 0.999999 });
  assert.equal(lo.next(), 800);
  assert.equal(hi.next(), 1200);
});
