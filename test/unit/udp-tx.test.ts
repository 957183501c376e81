// UdpTxBatch: datagrams from a lent batch buffer leave from where they are, one send per buffer,
// and a held batch schedules no end-of-turn flush (its owner flushes when its input batch is done).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UDP_TX, UDP_TX_STRIDE } from '../../src/io/native';
import type { Timers, UdpMux } from '../../src/tunnel/io';
import { UdpTxBatch } from '../../src/tunnel/udp-tx';

interface Sent { data: Buffer; records: Array<{ id: number; off: number; len: number; bytes: string }> }

function fakeMux(): { mux: UdpMux; sends: Sent[] } {
  const sends: Sent[] = [];
  const mux = {
    send(data: Buffer, meta: Uint32Array, count: number): number {
      const records = [];
      for (let i = 0; i < count; i++) {
        const m = i * UDP_TX_STRIDE;
        const off = meta[m + UDP_TX.OFFSET];
        const len = meta[m + UDP_TX.LENGTH];
        records.push({ id: meta[m + UDP_TX.SOCKET], off, len, bytes: data.subarray(off, off + len).toString() });
      }
      sends.push({ data, records });
      return count;
    },
  } as unknown as UdpMux;
  return { mux, sends };
}

function fakeTimers(): { timers: Timers; queued: Array<() => void> } {
  const queued: Array<() => void> = [];
  return { timers: { after: () => () => undefined, soon: (fn) => void queued.push(fn) }, queued };
}

test('datagrams in the lent buffer are sent from it, at their own offsets, without a copy', () => {
  const { mux, sends } = fakeMux();
  const { timers, queued } = fakeTimers();
  const tx = new UdpTxBatch(mux, timers);
  const batch = Buffer.from('xxhelloyyworldzz');
  tx.hold(true);
  tx.lend(batch);
  tx.add(1, batch, 2, 5, 0, 0);
  tx.add(2, batch, 9, 5, 0, 0);
  assert.equal(queued.length, 0, 'a held batch schedules nothing');
  tx.flush();
  tx.lend(null);
  assert.equal(sends.length, 1);
  assert.equal(sends[0].data, batch, 'sent from the lent buffer itself');
  assert.deepEqual(sends[0].records, [{ id: 1, off: 2, len: 5, bytes: 'hello' }, { id: 2, off: 9, len: 5, bytes: 'world' }]);
});

test('lent and own datagrams never share a send; lend(null) flushes what points into the lent buffer', () => {
  const { mux, sends } = fakeMux();
  const { timers } = fakeTimers();
  const tx = new UdpTxBatch(mux, timers);
  const batch = Buffer.from('AAAABBBB');
  const other = Buffer.from('CCCC');
  tx.hold(true);
  tx.lend(batch);
  tx.add(1, batch, 0, 4, 0, 0);
  tx.add(1, other, 0, 4, 0, 0); // a copy: the lent records go first
  tx.add(1, batch, 4, 4, 0, 0);
  tx.lend(null); // must not leave records pointing into a buffer that is about to change
  batch.fill(0x2e);
  other.fill(0x2e);
  assert.deepEqual(sends.map((s) => s.records.map((r) => r.bytes)), [['AAAA'], ['CCCC'], ['BBBB']]);
  assert.equal(sends[0].data, sends[2].data);
  assert.notEqual(sends[1].data, other, 'a datagram outside the lent buffer is copied');
});

test('without a hold, the batch flushes itself at the end of the turn', () => {
  const { mux, sends } = fakeMux();
  const { timers, queued } = fakeTimers();
  const tx = new UdpTxBatch(mux, timers);
  const src = Buffer.from('ping');
  tx.add(3, src, 0, 4, 0x7f000001, 9000);
  src.fill(0); // copied at add(): later changes do not reach the wire
  assert.equal(queued.length, 1);
  queued[0]();
  assert.deepEqual(sends.map((s) => s.records), [[{ id: 3, off: 0, len: 4, bytes: 'ping' }]]);
});
