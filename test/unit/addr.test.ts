// IPv4 and IPv6 addresses as the core keys them (src/core/addr.ts), IPv6 segments as the capture path
// parses them, and the flags that take IPv6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { endpointText, formatIp6, isV6Key, key6, keyWithPort, parseHostPort, parseIp } from '../../src/core/addr';
import { emptySegment, parseSegment } from '../../src/core/packet';
import { buildCommand, ClientOptions, ConfigError, Kind, ServerOptions } from '../../src/cli/options';
import { simIp } from '../sim/addr';
import { buildTcp } from '../sim/packet';
import { parseFlags } from '../lib/parse-flags';

const words = (text: string) => [...parseIp(text)!.ip6!];

test('IPv6 text in all its forms parses to the same words; IPv4 and IPv4-mapped IPv6 are IPv4', () => {
  assert.deepEqual(words('2001:db8::1'), [0x20010db8, 0, 0, 1]);
  assert.deepEqual(words('2001:0DB8:0000:0000:0000:0000:0000:0001'), [0x20010db8, 0, 0, 1]);
  assert.deepEqual(words('::1'), [0, 0, 0, 1]);
  assert.deepEqual(words('::'), [0, 0, 0, 0]);
  assert.deepEqual(words('fe80::'), [0xfe800000, 0, 0, 0]);
  assert.deepEqual(words('1:2:3:4:5:6:7:8'), [0x10002, 0x30004, 0x50006, 0x70008]);
  assert.deepEqual(words('64:ff9b::192.0.2.33'), [0x0064ff9b, 0, 0, 0xc0000221]);
  assert.deepEqual(parseIp('10.1.2.3'), { key: 0x0a010203, ip6: null });
  assert.deepEqual(parseIp('::ffff:10.1.2.3'), { key: 0x0a010203, ip6: null }, 'a dual-stack socket reports IPv4 peers so');
  assert.deepEqual(parseIp('::ffff:a01:203'), { key: 0x0a010203, ip6: null });
  for (const bad of ['', ':', ':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::1', '::1%eth0', '[::1]', '1.2.3.256', '1.2.3', '::1.2.3.4.5', 'example.com']) {
    assert.equal(parseIp(bad), null, `"${bad}" is no address`);
  }
});

test('IPv6 text comes out in the RFC 5952 form and round-trips', () => {
  const cases: [string, string][] = [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['FD00:201:2::2', 'fd00:201:2::2'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ];
  for (const [given, want] of cases) assert.equal(formatIp6(parseIp(given)!.ip6!), want);
  for (let i = 0; i < 200; i++) {
    const w = new Uint32Array(randomBytes(16).buffer.slice(0, 16));
    if (i % 3 === 0) w[1] = w[2] = 0;
    const text = formatIp6(w);
    const back = parseIp(text);
    if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) continue;
    assert.deepEqual([...back!.ip6!], [...w], text);
  }
  assert.equal(endpointText({ ip: parseIp('2001:db8::1')!.key, port: 443, ip6: parseIp('2001:db8::1')!.ip6 }), '[2001:db8::1]:443');
  assert.equal(endpointText({ ip: 0x0a000001, port: 80 }), '10.0.0.1:80');
});

test('keys: IPv4 below 2^32, IPv6 above, equal addresses equal keys, 20,000 random addresses 20,000 keys', () => {
  const a = parseIp('2001:db8::1')!;
  assert.ok(isV6Key(a.key) && Number.isSafeInteger(a.key));
  assert.equal(parseIp('2001:0db8:0::0001')!.key, a.key);
  assert.notEqual(parseIp('2001:db8::2')!.key, a.key);
  assert.ok(!isV6Key(parseIp('255.255.255.255')!.key));
  const keys = new Set<number>();
  const flowKeys = new Set<number>();
  for (let i = 0; i < 20_000; i++) {
    const w = new Uint32Array(randomBytes(16).buffer.slice(0, 16));
    // Neighbours differ in one bit of the last word only: a weak hash would fold them together.
    if (i % 2) w[3] = i;
    const k = key6(w[0], w[1], w[2], w[3]);
    keys.add(k);
    flowKeys.add(keyWithPort(k, 30000));
    flowKeys.add(keyWithPort(k, 30001));
    assert.ok(Number.isSafeInteger(keyWithPort(k, 65535)));
  }
  assert.equal(keys.size, 20_000);
  assert.equal(flowKeys.size, 40_000);
  assert.equal(keyWithPort(0x7f000001, 30000), 0x7f000001 * 65536 + 30000, 'exact for IPv4');
  assert.ok(keyWithPort(a.key, 1) >= 2 ** 48, 'IPv6 flow keys never meet IPv4 ones');
});

test('host:port: [IPv6]:port, IPv4:port and names; a bare IPv6 address is refused with a hint', () => {
  assert.deepEqual(parseHostPort('[::1]:30000'), { host: '::1', port: 30000 });
  assert.deepEqual(parseHostPort('[2001:db8::1]:9999'), { host: '2001:db8::1', port: 9999 });
  assert.deepEqual(parseHostPort('127.0.0.1:9999'), { host: '127.0.0.1', port: 9999 });
  assert.deepEqual(parseHostPort('target.example:53'), { host: 'target.example', port: 53 });
  assert.throws(() => parseHostPort('::1'), /\[addr\]:port/);
  assert.throws(() => parseHostPort('2001:db8::1:9999'), /\[addr\]:port/);
  assert.throws(() => parseHostPort('[::1]'), /has no port/);
  assert.throws(() => parseHostPort('host'), /not host:port/);
  assert.throws(() => parseHostPort('[not-v6]:1'), /not an IPv6 address/);
  assert.throws(() => parseHostPort('[::1]:0'), /outside 1-65535/);
});

test('an IPv6 segment parses like an IPv4 one; extension headers and short payload lengths are dropped', () => {
  const src = simIp('2001:db8:9::1');
  const dst = simIp('2001:db8:9::2');
  const payload = Buffer.from('hello over IPv6');
  const pkt = buildTcp({ srcIp: src, dstIp: dst, srcPort: 40000, dstPort: 10001, seq: 7, ack: 9, flags: 0x18, window: 512 }, payload, { ts: [11, 12], ttl: 57 });
  pkt.writeUInt32BE(0x6000beef, 0); // a flow label
  const seg = emptySegment();
  assert.ok(parseSegment(pkt, 0, pkt.length, seg));
  assert.equal(seg.ipVersion, 6);
  assert.equal(seg.srcIp, src);
  assert.equal(seg.dstIp, dst);
  assert.deepEqual([...seg.src6], words('2001:db8:9::1'));
  assert.deepEqual([seg.srcPort, seg.dstPort, seg.seq, seg.ack, seg.flags, seg.window, seg.ttl, seg.flowLabel], [40000, 10001, 7, 9, 0x18, 512, 57, 0xbeef]);
  assert.deepEqual([seg.hasTs, seg.tsVal, seg.tsEcr], [true, 11, 12]);
  assert.equal(pkt.toString('utf8', seg.payloadOff, seg.payloadOff + seg.payloadLen), 'hello over IPv6');
  // Ethernet-style padding after the packet is not payload.
  const padded = Buffer.concat([pkt, Buffer.alloc(6)]);
  assert.ok(parseSegment(padded, 0, padded.length, seg));
  assert.equal(seg.payloadLen, payload.length);
  // Cut short by the capture: the headers stay, wireLen tells the length on the wire.
  assert.ok(parseSegment(pkt, 0, pkt.length - 5, seg));
  assert.deepEqual([seg.payloadLen, seg.wireLen], [payload.length - 5, payload.length]);
  const hopByHop = Buffer.from(pkt);
  hopByHop[6] = 0;
  assert.equal(parseSegment(hopByHop, 0, hopByHop.length, seg), false, 'extension headers are not followed');
  const short = Buffer.from(pkt);
  short.writeUInt16BE(19, 4);
  assert.equal(parseSegment(short, 0, short.length, seg), false, 'a payload length shorter than a TCP header');
  const v5 = Buffer.from(pkt);
  v5[0] = 0x50;
  assert.equal(parseSegment(v5, 0, v5.length, seg), false);
});

const parse = parseFlags;

test('flags take IPv6: --taddr bare or in brackets, --ludp=[::1]:port, --lcapIp, the server target [::1]:port', () => {
  const c = parse('client', ['--taddr=2001:db8::1', '--ludp=[::1]:30000', '--lcapIp=2001:db8::2']) as ClientOptions;
  assert.deepEqual([c.serverHost, c.ludpHost, c.ludpPort, c.lcapIp], ['2001:db8::1', '::1', 30000, '2001:db8::2']);
  assert.equal((parse('client', ['--taddr=[2001:db8::1]']) as ClientOptions).serverHost, '2001:db8::1');
  assert.equal((parse('client', ['--taddr=server.example']) as ClientOptions).serverHost, 'server.example');
  assert.throws(() => parse('client', ['--taddr=[2001:db8::1]:10001']), (e: Error) => e instanceof ConfigError && /--taddr: .*"2001:db8::1".*--ports/.test(e.message));
  assert.throws(() => parse('client', ['--taddr=2001:db8::1', '--ludp=::1']), (e: Error) => e instanceof ConfigError && /--ludp: .*\[addr\]:port/.test(e.message));
  assert.throws(() => parse('client', ['--taddr=2001:db8::1', '--lcapIp=2001:db8::zz']), (e: Error) => e instanceof ConfigError && /--lcapIp: .*not an IPv4 or IPv6 address/.test(e.message));
  assert.throws(() => parse('client', ['--taddr=2001:db8::1', '--lcapIp=10.0.0.1']), (e: Error) => e instanceof ConfigError && /--lcapIp: .*same IP version/.test(e.message));
  const s = parse('server', ['--taddr=[::1]:9999', '--lcapIp=::']) as ServerOptions;
  assert.deepEqual([s.targetHost, s.targetPort, s.lcapIp], ['::1', 9999, '::']);
  assert.equal((parse('server', ['--taddr=[::1]:9999', '--lcapIp=[fd00::1]']) as ServerOptions).lcapIp, 'fd00::1');
});
