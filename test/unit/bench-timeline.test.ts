// The latency timeline's matching (bench/timeline-match.ts), on taps built here: plain pings read by
// sequence number, tunnel segments found by their data length among keepalives and pure ACKs, lost
// pings left out, and the stages the slowest pings are made of; and the crossings read from perf script.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crossingStats, parseCrossings } from '../../bench/crossings';
import { matchPings, pingSeq, stageStats, tapPackets, TapPacket } from '../../bench/timeline-match';
import type { PcapFrame } from '../../test/lib/pcap';

function ping(seq: number, size = 64): Buffer {
  const b = Buffer.alloc(size, 0x5a);
  b.writeUInt32LE(0x72736b62, 0);
  b.writeUInt32LE(2, 4);
  b.writeBigUInt64LE(BigInt(seq), 16);
  return b;
}

/** An IPv4 packet (no options) with a UDP or TCP header (TCP: 32 bytes, as with timestamps) and the payload. */
function ipPacket(proto: 6 | 17, sport: number, dport: number, payload: Buffer): Buffer {
  const l4 = proto === 17 ? 8 : 32;
  const b = Buffer.alloc(20 + l4 + payload.length);
  b[0] = 0x45;
  b.writeUInt16BE(b.length, 2);
  b[9] = proto;
  b.writeUInt16BE(sport, 20);
  b.writeUInt16BE(dport, 22);
  if (proto === 6) b[32] = (32 / 4) << 4;
  payload.copy(b, 20 + l4);
  return b;
}

const frame = (timeMs: number, ip: Buffer, index = 0): PcapFrame => ({ index, timeMs, frame: ip, ip });

test('tapPackets reads the direction from the ports, the payload length, and the sequence of plain pings only', () => {
  const up = (s: number, d: number) => (d === 4000 ? true : s === 4000 ? false : undefined);
  const ps = tapPackets([
    frame(1, ipPacket(17, 5000, 4000, ping(7))),
    frame(2, ipPacket(6, 4000, 5000, Buffer.alloc(90))),
    frame(3, ipPacket(17, 5000, 9999, ping(8))), // another port: not this path's
    frame(4, ipPacket(17, 4000, 5000, Buffer.alloc(64, 1))), // UDP, but not a ping
  ], up);
  assert.deepEqual(ps, [
    { t: 1000, up: true, len: 64, seq: 7 },
    { t: 2000, up: false, len: 90, seq: undefined },
    { t: 4000, up: false, len: 64, seq: undefined },
  ]);
  assert.equal(pingSeq(ping(3).subarray(0, 31)), undefined);
});

test('matchPings follows each ping through the tunnel and leaves out one that a point did not see', () => {
  const plain = (t: number, seq: number): TapPacket => ({ t, up: true, len: 64, seq });
  const seg = (t: number, len = 104): TapPacket => ({ t, up: true, len });
  // Pings 0, 1, 2 sent at 0, 1000, 2000 µs; ping 1 is lost inside the tunnel (never reaches the far lo).
  const appIn = [plain(0, 0), plain(1000, 1), plain(2000, 2)];
  const wireOut = [seg(30), seg(500, 40), seg(1030), seg(1700, 0), seg(2045), seg(2046, 40)];
  const wireIn = [seg(35), seg(1036), seg(2050)];
  const farLo = [plain(80, 0), plain(2110, 2)];
  const t = matchPings([{ name: 'app', packets: appIn }, { name: 'out', packets: wireOut }, { name: 'in', packets: wireIn },
    { name: 'far', packets: farLo }]);
  assert.equal(t.unmatched, 1);
  assert.deepEqual(t.times, [[0, 30, 35, 80], [2000, 2045, 2050, 2110]]);
  assert.deepEqual(t.dataLen, [undefined, 104, 104, undefined]);
  const s = stageStats(t.times, ['a', 'b', 'c']);
  assert.deepEqual(s.map((x) => x.name), ['a', 'b', 'c', 'whole span']);
  assert.deepEqual(s.map((x) => x.p99), [45, 5, 60, 110]);
  // The slowest 1 % (here one ping of two) is ping 2.
  assert.deepEqual(s.map((x) => x.slowMean), [45, 5, 60, 110]);
  assert.deepEqual(s.map((x) => x.mean), [37.5, 5, 52.5, 95]);
});

test('matchPings refuses points whose ends see no plain ping, and takes no packet from before the previous point', () => {
  const seg = (t: number): TapPacket => ({ t, up: true, len: 100 });
  assert.throws(() => matchPings([{ name: 'a', packets: [seg(1)] }, { name: 'b', packets: [seg(2)] }]), /first and last/);
  const t = matchPings([
    { name: 'a', packets: [{ t: 10, up: true, len: 64, seq: 0 }] },
    { name: 'b', packets: [seg(5), seg(12)] },
    { name: 'c', packets: [{ t: 20, up: true, len: 64, seq: 0 }] },
  ]);
  assert.deepEqual(t.times, [[10, 12, 20]]);
});

test('parseCrossings splits a wake-up that ends in a send into its stages, and skips wake-ups that send nothing', () => {
  const l = (tid: number, t: number, ev: string, body: string) => `            node ${tid} [001] ${t.toFixed(9)}: ${ev}: ${body}`;
  const script = [
    l(9, 1.000000, 'sched:sched_wakeup', 'comm=node pid=7 prio=120 target_cpu=001'), // a timer: no send
    l(7, 1.000010, 'sched:sched_switch', 'prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=node next_pid=7 next_prio=120'),
    l(7, 1.000012, 'raw_syscalls:sys_exit', 'NR 281 = 0'),
    l(7, 1.000020, 'raw_syscalls:sys_enter', 'NR 281 (5, 7ffd, 400, 3e8, 0, 8)'),
    l(9, 2.000000, 'sched:sched_wakeup', 'comm=node pid=7 prio=120 target_cpu=001'),
    l(7, 2.000004, 'sched:sched_switch', 'prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=node next_pid=7 next_prio=120'),
    l(7, 2.000007, 'raw_syscalls:sys_exit', 'NR 281 = 1'),
    l(7, 2.000010, 'raw_syscalls:sys_enter', 'NR 299 (1a, 7ffd, 40, 40, 0, 0)'),
    l(7, 2.000013, 'raw_syscalls:sys_exit', 'NR 299 = 1'),
    l(7, 2.000015, 'raw_syscalls:sys_enter', 'NR 232 (9, 7ffd, 40, 0, 0, 0)'), // a non-blocking epoll inside the work
    l(7, 2.000016, 'raw_syscalls:sys_exit', 'NR 232 = 0'),
    l(7, 2.000030, 'raw_syscalls:sys_enter', 'NR 307 (1b, 7ffd, 1, 0, 0, 0)'),
    l(7, 2.000050, 'raw_syscalls:sys_exit', 'NR 307 = 1'),
    l(7, 2.000056, 'raw_syscalls:sys_enter', 'NR 281 (5, 7ffd, 400, 3e8, 0, 8)'),
  ].join('\n');
  const cs = parseCrossings(script, new Set([7]));
  assert.equal(cs.length, 1);
  const c = cs[0];
  assert.equal(c.fd, 0x1a);
  const us = (a: number, b: number) => Math.round(b - a);
  assert.deepEqual([us(c.wake, c.run), us(c.run, c.epollRet), us(c.epollRet, c.recvEnter), us(c.recvEnter, c.recvExit),
    us(c.recvExit, c.sendEnter), us(c.sendEnter, c.sendExit), us(c.sendExit, c.sleep)], [4, 3, 3, 3, 17, 20, 6]);
  assert.deepEqual(crossingStats(cs).map((s) => Math.round(s.p50)), [4, 3, 3, 3, 17, 20, 50, 6]);
});
