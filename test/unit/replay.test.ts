import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_FRAME_BYTES } from '../../src/core/frame';
import { REPLAY_WINDOW_FRAMES, ReplayWindow } from '../../src/core/replay';

const U = MIN_FRAME_BYTES;

test('a frame is fresh once: the same stream offset again is a replay', () => {
  const w = new ReplayWindow();
  for (const off of [0, 15, 1200, 1215]) {
    assert.ok(w.fresh(off));
    w.accept(off);
    assert.ok(!w.fresh(off));
  }
});

test('reordered frames inside the window are taken once each; older than the window are refused', () => {
  const w = new ReplayWindow();
  const offs = Array.from({ length: 2000 }, (_, i) => i * 100);
  const shuffled = [...offs].sort((a, b) => ((a * 7919) % 1000) - ((b * 7919) % 1000));
  let took = 0;
  for (const o of shuffled) if (w.fresh(o)) (w.accept(o), took++);
  for (const o of shuffled) assert.ok(!w.fresh(o));
  assert.equal(took, 2000);
  const top = REPLAY_WINDOW_FRAMES * U * 3;
  w.accept(top);
  assert.ok(!w.fresh(top - REPLAY_WINDOW_FRAMES * U - U), 'too old to tell');
  assert.ok(w.fresh(top - (REPLAY_WINDOW_FRAMES - 40) * U), 'still inside the window, never seen');
});

test('a jump far ahead clears the ring: old bits do not make new frames look replayed', () => {
  const w = new ReplayWindow();
  for (let i = 0; i < 5000; i++) w.accept(i * U);
  const far = 10 ** 12;
  w.accept(far);
  for (let i = 1; i < 5000; i++) assert.ok(w.fresh(far + i * U), `offset ${i} after the jump`);
  assert.ok(!w.fresh(far));
});

test('offsets beyond 2^32 work (long-lived connections)', () => {
  const w = new ReplayWindow();
  const base = 2 ** 40 + 7;
  w.accept(base);
  assert.ok(!w.fresh(base));
  assert.ok(w.fresh(base + U));
  assert.ok(w.fresh(base + 2 ** 32));
});
