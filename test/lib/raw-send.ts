// Raw TCP segment sender for the attack tests, run inside a namespace (the router) with the addon's
// Injector (raw IPv4, checksums right). Record layout read from the addon at run time
// (native.layouts.TX), so it keeps working when the record grows (e.g. TTL and IP id fields).
//
//   raw-send --spec FILE.json      prints one JSON result line: {sent, errors, lastError, ms, kinds}
//
// Spec: { mode: 'rst' | 'fuzz', count, rate (packets/s), maxMs,
//         spoof: [{src, sport, dst, dport, seq?, ack?}]    live 4-tuples to forge segments on,
//         own?: {src, sportMin, sportMax, dst, dports: number[]} (fuzz: the fuzzer's own address),
//         window?: number  (fuzz: how far from seq/ack an "in-window" forgery may be; default 65535) }
// rst:  every packet an RST (half RST|ACK with a random ack) with a random seq on a spoof tuple, round-robin.
// fuzz: half on the spoof tuples (in and out of the window, lengths 0..1460), half from `own`
//       (lengths 1..1460: a payload-less segment to a listening port draws the kernel's own RST or
//       SYN-ACK, as from any TCP server, which is not what is being tested); random flags, window,
//       payload; a quarter of the payloads start with a TLS application-data header 17 03 03 LL LL.
import * as crypto from 'crypto';
import * as fs from 'fs';
import { loadNative } from '../../src/io/native';
import { parseArgs } from './args';

interface Tuple { src: string; sport: number; dst: string; dport: number; seq?: number; ack?: number }
interface Spec {
  mode: 'rst' | 'fuzz'; count: number; rate: number; maxMs: number; spoof: Tuple[];
  own?: { src: string; sportMin: number; sportMax: number; dst: string; dports: number[] }; window?: number;
}

const FIN = 1, RST = 4, ACK = 16;
const ipU32 = (s: string) => s.split('.').reduce((a, x) => ((a << 8) | Number(x)) >>> 0, 0);
const r32 = () => crypto.randomBytes(4).readUInt32BE(0);
const rint = (n: number) => crypto.randomInt(n);

async function main(): Promise<void> {
  const spec = JSON.parse(fs.readFileSync(parseArgs(process.argv.slice(2)).opts.get('spec')!, 'utf8')) as Spec;
  if (!(spec.count > 0 && spec.count <= 2_000_000 && spec.rate > 0 && spec.maxMs > 0 && spec.maxMs <= 120_000)) throw new Error('spec: count, rate or maxMs out of bounds');
  if (spec.spoof.length === 0 && !spec.own) throw new Error('spec: nothing to send to');
  const native = loadNative();
  const L = native.layouts.TX;
  const inj = new native.Injector();
  const BATCH = 256;
  const MAXLEN = 1460;
  const data = Buffer.alloc(BATCH * MAXLEN);
  const meta = new Uint32Array(BATCH * L.STRIDE);
  const span = spec.window ?? 65535;
  const kinds: Record<string, number> = {};
  const count = (k: string) => { kinds[k] = (kinds[k] ?? 0) + 1; };
  let sent = 0;
  let n = 0;
  const t0 = Date.now();

  const fill = (i: number): void => {
    const m = i * L.STRIDE;
    meta.fill(0, m, m + L.STRIDE);
    // Fields the record may have grown (protocol v2): a normal TTL, a random IP id, no options.
    if (L.TTL !== undefined) meta[m + L.TTL] = 64;
    if (L.IP_ID !== undefined) meta[m + L.IP_ID] = rint(65536);
    let t: Tuple;
    let len = 0;
    let flags: number;
    let seq: number;
    let ack: number;
    const useOwn = spec.mode === 'fuzz' && spec.own && (spec.spoof.length === 0 || (sent + i) % 2 === 1);
    if (spec.mode === 'rst') {
      t = spec.spoof[(sent + i) % spec.spoof.length];
      const withAck = rint(2) === 1;
      flags = withAck ? RST | ACK : RST;
      seq = r32();
      ack = withAck ? r32() : 0;
      count(withAck ? 'rst-ack' : 'rst');
    } else if (useOwn) {
      const o = spec.own!;
      t = { src: o.src, sport: o.sportMin + rint(o.sportMax - o.sportMin + 1), dst: o.dst, dport: o.dports[rint(o.dports.length)] };
      len = 1 + rint(MAXLEN);
      flags = rint(256);
      seq = r32();
      ack = r32();
      count('own');
    } else {
      t = spec.spoof[rint(spec.spoof.length)];
      len = rint(MAXLEN + 1);
      flags = rint(256);
      const inWindow = rint(2) === 1 && t.seq !== undefined && t.ack !== undefined;
      seq = inWindow ? (t.seq! + rint(2 * span) - span) >>> 0 : r32();
      ack = inWindow ? (t.ack! + rint(2 * span) - span) >>> 0 : r32();
      count(inWindow ? 'spoof-in-window' : 'spoof-random');
      // A FIN on a live tuple at an exact seq would be a legitimate close; the fuzzer forges, it does not close.
      if (inWindow) flags &= ~FIN;
    }
    const off = i * MAXLEN;
    if (len > 0) {
      crypto.randomFillSync(data, off, len);
      if (len >= 5 && rint(4) === 0) {
        data[off] = 0x17; data[off + 1] = 0x03; data[off + 2] = 0x03;
        count('tls-header');
      }
    }
    meta[m + L.SRC_IP] = ipU32(t.src); meta[m + L.DST_IP] = ipU32(t.dst);
    meta[m + L.SRC_PORT] = t.sport; meta[m + L.DST_PORT] = t.dport;
    meta[m + L.SEQ] = seq; meta[m + L.ACK] = ack; meta[m + L.FLAGS] = flags; meta[m + L.WINDOW] = rint(65536);
    meta[m + L.PAYLOAD_OFF] = off; meta[m + L.PAYLOAD_LEN] = len;
  };

  // Paced in batches: at most `rate` per second, never more than `count`, never longer than maxMs.
  for (let iter = 0; sent < spec.count && Date.now() - t0 < spec.maxMs && iter < 10_000_000; iter++) {
    const due = Math.min(spec.count, Math.floor(((Date.now() - t0) / 1000) * spec.rate) + 1);
    n = Math.min(BATCH, due - sent);
    if (n <= 0) { await new Promise((r) => setTimeout(r, 2)); continue; }
    for (let i = 0; i < n; i++) fill(i);
    inj.send(data, meta, n);
    sent += n;
  }
  const st = inj.stats();
  inj.close();
  process.stdout.write(JSON.stringify({ sent, injected: st.sent, errors: st.errors, lastError: st.lastError, ms: Date.now() - t0, kinds }) + '\n');
}

if (require.main === module) {
  main().then(() => process.exit(0), (e) => { process.stderr.write(`raw-send: ${e instanceof Error ? e.message : e}\n`); process.exit(2); });
}
