// Shared by the native tests, which run against the real kernel on loopback only. They need root (raw
// sockets, packet capture, TCP_REPAIR, SO_RCVBUFFORCE) and a built addon (npm run build:native).
// Records are built and read through the layout constants of src/io/native.ts, never with numbers of
// their own.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as path from 'node:path';
import {
  Capture, CAPTURE, CAPTURE_STRIDE, loadNative, TX, TX_STRIDE, UDP_RX, UDP_RX_STRIDE, UDP_TX,
  UDP_TX_STRIDE, UdpMux, UdpMuxOptions, WatcherEvent,
} from '../../src/io/native';

export const native = loadNative();
export const LO = '127.0.0.1';
export const LO_U32 = 0x7f000001;
export const FIN = 0x01;
export const SYN = 0x02;
export const PSH = 0x08;
export const ACK = 0x10;

/** The compiled addon and src/io/native.js, for child processes and workers. */
export const ADDON_FILE = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'rsock_native.node');
export const NATIVE_JS = path.join(__dirname, '..', '..', 'src', 'io', 'native.js');

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

/** Runs `body` in a child node with the addon loaded as `n`, optionally behind a wrapper (unshare, setpriv). */
export function runChild(body: string, timeoutMs = 10000, wrapper: string[] = []) {
  const script = `const n = require(${JSON.stringify(ADDON_FILE)});\n${body}`;
  const started = Date.now();
  const argv = [...wrapper, process.execPath, '-e', script];
  const r = spawnSync(argv[0], argv.slice(1), { timeout: timeoutMs, encoding: 'utf8' });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

/** Records of one layout, each row giving every field's value by its name in the layout. */
function packRecords<L extends Readonly<Record<string, number>>>(
  stride: number,
  layout: L,
  rows: Array<{ [F in keyof L]?: number }>,
): Uint32Array {
  // Fields a row leaves out are 0, as in a fresh record (IP_VERSION 0: IPv4).
  const meta = new Uint32Array(rows.length * stride);
  rows.forEach((row, i) => {
    for (const f of Object.keys(layout) as Array<keyof L>) meta[i * stride + layout[f]] = row[f] ?? 0;
  });
  return meta;
}

// ---------- TCP segments: injector records and captured packets ----------

/** RFC 1071 sum over the concatenation of `parts`; 0 means a stored checksum verifies. */
function internetChecksum(parts: Buffer[]): number {
  const all = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < all.length; i += 2) sum += all.readUInt16BE(i);
  if (all.length % 2) sum += all[all.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface Tx {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Buffer;
  /** The TX words added for TCP fidelity; 0 when left out. */
  tsVal?: number; tsEcr?: number; options?: number; ipId?: number; ttl?: number;
}

/** A captured segment: what was injected (addresses as text) plus what the kernel and the injector filled in. */
export interface Seg extends Omit<Tx, 'src' | 'dst' | 'tsVal' | 'tsEcr' | 'options'> {
  src: string;
  dst: string;
  ttl: number;
  ipId: number;
  /** The TCP options bytes, and the timestamp option's values when there is one. */
  tcpOptions: Buffer;
  ts: { val: number; ecr: number } | null;
  dontFragment: boolean;
  protocol: number;
  ipChecksumOk: boolean;
  tcpChecksumOk: boolean;
}

const ipText = (b: Buffer, off: number) => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

export function parseSegment(pkt: Buffer): Seg {
  assert.equal(pkt[0] >> 4, 4, 'IPv4');
  const ihl = (pkt[0] & 0x0f) * 4;
  const total = pkt.readUInt16BE(2);
  assert.equal(total, pkt.length, 'IP total length matches the captured length');
  const tcp = pkt.subarray(ihl, total);
  const doff = (tcp[12] >> 4) * 4;
  const pseudo = Buffer.alloc(12);
  pkt.copy(pseudo, 0, 12, 20);
  pseudo[9] = 6;
  pseudo.writeUInt16BE(tcp.length, 10);
  const tcpOptions = Buffer.from(tcp.subarray(20, doff));
  let ts: Seg['ts'] = null;
  for (let o = 0; o < tcpOptions.length && tcpOptions[o] !== 0;) {
    if (tcpOptions[o] === 1) { o++; continue; }
    if (tcpOptions[o] === 8) ts = { val: tcpOptions.readUInt32BE(o + 2), ecr: tcpOptions.readUInt32BE(o + 6) };
    o += Math.max(tcpOptions[o + 1], 2);
  }
  return {
    src: ipText(pkt, 12),
    dst: ipText(pkt, 16),
    sport: tcp.readUInt16BE(0),
    dport: tcp.readUInt16BE(2),
    seq: tcp.readUInt32BE(4),
    ack: tcp.readUInt32BE(8),
    flags: tcp[13],
    window: tcp.readUInt16BE(14),
    payload: Buffer.from(tcp.subarray(doff)),
    ttl: pkt[8],
    ipId: pkt.readUInt16BE(4),
    tcpOptions,
    ts,
    dontFragment: (pkt.readUInt16BE(6) & 0x4000) !== 0,
    protocol: pkt[9],
    ipChecksumOk: internetChecksum([pkt.subarray(0, ihl)]) === 0,
    tcpChecksumOk: internetChecksum([pseudo, tcp]) === 0,
  };
}


/** One TX record per row, the payload given as a range of some data Buffer. */
export function txMeta(rows: Array<Omit<Tx, 'payload'> & { off: number; len: number }>): Uint32Array {
  return packRecords(
    TX_STRIDE,
    TX,
    rows.map((s) => ({
      SRC_IP: s.src, DST_IP: s.dst, SRC_PORT: s.sport, DST_PORT: s.dport, SEQ: s.seq, ACK: s.ack, FLAGS: s.flags,
      WINDOW: s.window, PAYLOAD_OFF: s.off, PAYLOAD_LEN: s.len, TS_VAL: s.tsVal ?? 0, TS_ECR: s.tsEcr ?? 0,
      OPTIONS: s.options ?? 0, IP_ID: s.ipId ?? 0, TTL: s.ttl ?? 0,
    })),
  );
}

/** Packs segments the way the TypeScript core does: payloads back to back, TX_STRIDE words each. */
export function packTx(segs: Tx[]): { data: Buffer; meta: Uint32Array } {
  let off = 0;
  const rows = segs.map((s) => {
    const row = { ...s, off, len: s.payload.length };
    off += s.payload.length;
    return row;
  });
  return { data: Buffer.concat(segs.map((s) => s.payload)), meta: txMeta(rows) };
}

/** A JS expression, for child scripts: the meta of one pure ACK from 127.0.0.1:1 to 127.0.0.1:9. */
export const ACK_TO_PORT_9 = `new Uint32Array(${JSON.stringify([
  ...txMeta([{ src: LO_U32, dst: LO_U32, sport: 1, dport: 9, seq: 0, ack: 0, flags: ACK, window: 100, off: 0, len: 0 }]),
])})`;

/** The packets of a capture batch, as views into `data` (valid only during the callback). */
export function capturedPackets(data: Buffer, meta: Uint32Array, count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const off = meta[i * CAPTURE_STRIDE + CAPTURE.OFFSET];
    const len = meta[i * CAPTURE_STRIDE + CAPTURE.LENGTH];
    assert.ok(off + len <= data.length, 'packet lies inside the batch buffer');
    out.push(data.subarray(off, off + len));
  }
  return out;
}

/** A capture on lo that parses everything it sees; always close() it. */
export class Recorder {
  readonly segs: Seg[] = [];
  readonly errors: Error[] = [];
  readonly batchSizes: number[] = [];
  /** Every distinct data Buffer and meta array the capture handed over (the addon reuses one of each). */
  readonly dataObjects = new Set<Buffer>();
  readonly metaObjects = new Set<Uint32Array>();
  readonly capture: Capture;

  constructor(filter: string, maxBatch?: number) {
    this.capture = new native.Capture(
      // On lo every packet passes the ring twice (outgoing copy, then incoming), so a burst of 100
      // needs 200 slots; leave room so that the tests check correctness, not ring capacity.
      { device: 'lo', filter, maxBatch, bufferBytes: 64 << 20 },
      (data, meta, count) => {
        // Failures are collected, not thrown: the tests assert that `errors` stays empty.
        // data and meta are only valid during this call: parseSegment copies what it keeps.
        try {
          assert.ok(Buffer.isBuffer(data));
          assert.ok(meta instanceof Uint32Array);
          assert.ok(count >= 1 && meta.length >= count * CAPTURE_STRIDE, 'meta holds count (offset, length) records');
          this.dataObjects.add(data);
          this.metaObjects.add(meta);
          this.batchSizes.push(count);
          for (const pkt of capturedPackets(data, meta, count)) this.segs.push(parseSegment(pkt));
        } catch (e) {
          this.errors.push(e as Error);
        }
      },
      (err) => this.errors.push(err),
    );
  }

  close(): void {
    this.capture.close();
  }
}

// ---------- socket watcher ----------

export function newWatcher() {
  const events: WatcherEvent[] = [];
  const watcher = new native.SocketWatcher((ev) => events.push(ev));
  return { watcher, events };
}

export function listenOnFreePort(w: ReturnType<typeof newWatcher>['watcher']): { fd: number; port: number } {
  for (let attempt = 0; ; attempt++) {
    const port = randomPort();
    try {
      return { fd: w.listen(LO, port, 16), port };
    } catch (e) {
      if (attempt > 20 || !/Address already in use/.test((e as Error).message)) throw e;
    }
  }
}

// ---------- UDP mux ----------

/** Deterministic payload: distinct per index, so a swap or a wrong offset shows. */
export function payload(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k * 7 + (k >> 8)) & 0xff;
  return b;
}

export interface Rx {
  socket: number;
  data: Buffer;
  srcIp: number;
  srcPort: number;
}

/** The datagrams of a receive batch, copied: the batch buffer is reused by the next batch. */
export function readUdpBatch(data: Buffer, meta: Uint32Array, count: number): Rx[] {
  const out: Rx[] = [];
  for (let i = 0; i < count; i++) {
    const b = i * UDP_RX_STRIDE;
    const off = meta[b + UDP_RX.OFFSET];
    const len = meta[b + UDP_RX.LENGTH];
    assert.ok(off + len <= data.length, 'datagram lies inside the batch buffer');
    out.push({
      socket: meta[b + UDP_RX.SOCKET],
      data: Buffer.from(data.subarray(off, off + len)),
      srcIp: meta[b + UDP_RX.SRC_IP],
      srcPort: meta[b + UDP_RX.SRC_PORT],
    });
  }
  return out;
}

/** A mux that records what it receives; failures are collected, not thrown: `errors` must stay empty. */
export class MuxRecorder {
  readonly rx: Rx[] = [];
  readonly batchSizes: number[] = [];
  readonly errors: Error[] = [];
  readonly mux: UdpMux;

  constructor(opts?: UdpMuxOptions) {
    this.mux = new native.UdpMux((data, meta, count) => {
      try {
        assert.ok(Buffer.isBuffer(data));
        assert.ok(meta instanceof Uint32Array);
        // The same arrays serve every batch: meta has room for maxBatch records, `count` are valid.
        assert.ok(meta.length >= count * UDP_RX_STRIDE, 'meta holds the batch');
        assert.ok(count > 0, 'no empty batches');
        this.batchSizes.push(count);
        this.rx.push(...readUdpBatch(data, meta, count));
      } catch (e) {
        this.errors.push(e as Error);
      }
    }, opts);
  }
}

export interface UdpTxRecord {
  socket: number;
  offset: number;
  length: number;
  dstIp: number;
  dstPort: number;
}

export function udpTxMeta(list: UdpTxRecord[]): Uint32Array {
  return packRecords(
    UDP_TX_STRIDE,
    UDP_TX,
    list.map((t) => ({ SOCKET: t.socket, OFFSET: t.offset, LENGTH: t.length, DST_IP: t.dstIp, DST_PORT: t.dstPort })),
  );
}

export interface TxSpec {
  socket: number;
  data: Buffer;
  dstIp: number;
  dstPort: number;
}

export function packUdpTx(list: TxSpec[]): { data: Buffer; meta: Uint32Array } {
  let offset = 0;
  const records = list.map((t) => {
    const r = { socket: t.socket, offset, length: t.data.length, dstIp: t.dstIp, dstPort: t.dstPort };
    offset += t.data.length;
    return r;
  });
  return { data: Buffer.concat(list.map((t) => t.data)), meta: udpTxMeta(records) };
}

export async function dgramSocket(): Promise<{ sock: dgram.Socket; port: number; got: { data: Buffer; port: number }[] }> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 16 << 20, sendBufferSize: 16 << 20 });
  const got: { data: Buffer; port: number }[] = [];
  sock.on('message', (msg, rinfo) => got.push({ data: msg, port: rinfo.port }));
  await new Promise<void>((resolve) => sock.bind(0, LO, resolve));
  return { sock, port: sock.address().port, got };
}

export function closeDgram(sock: dgram.Socket): void {
  try {
    sock.close();
  } catch {
    // already closed
  }
}

/** Binds a plain dgram socket to `port` on lo, proving the port is free. */
export async function bindsAgain(port: number): Promise<void> {
  const again = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.bind(port, LO, resolve);
  });
  again.close();
}

/** A second mux to send from: its send() is synchronous, so everything is queued at the receiver before the loop turns. */
export function senderMux(): { tx: UdpMux; id: number; sendTo: (port: number, list: Buffer[]) => void } {
  const tx = new native.UdpMux(() => {});
  const id = tx.bind(LO, 0);
  return {
    tx,
    id,
    sendTo(port, list) {
      const { data, meta } = packUdpTx(list.map((d) => ({ socket: id, data: d, dstIp: LO_U32, dstPort: port })));
      assert.equal(tx.send(data, meta, list.length), list.length);
    },
  };
}
