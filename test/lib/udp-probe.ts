// UDP client for the tests, run inside a namespace. Prints one JSON result line on stdout.
//
//   udp-probe echo --to H:P [--count 200] [--min 16] [--max 1200] [--rate 500] [--wait 3000] [--random 1]
//       Sends `count` datagrams of mixed sizes at `rate` per second, checks every echo byte for byte.
//       --random 1: every datagram is random bytes of a random size in min..max (no header, so a
//       capture of the tunnel shows rsock's own structure, not ours); echoes are matched by content.
//       Result: {sent, received, bad, dup, sendErrors, ratio, rttMs:{p50,p99,max}, elapsedMs, maxGapMs}
//       maxGapMs: the longest time, from the first send to the last, in which no echo arrived.
//   udp-probe until-echo --to H:P [--interval 50] [--timeout 30000] [--size 64]
//       Sends a probe every `interval` ms until a correct echo arrives. Result: {ok, ms, at, sent}
//       (`at` = Date.now() when the echo arrived).
//   udp-probe send --to H:P [--count 10] [--interval 500] [--size 200]
//       One-direction traffic: "sink" datagrams the echo target does not answer. Result: {sent}
//
// All datagrams of one run leave from one socket, i.e. they form one flow for the tunnel.
import * as crypto from 'crypto';
import * as dgram from 'dgram';
import { checkDatagram, makeDatagram, mixedSize, MAGIC_ECHO, MAGIC_SINK } from './payload';
import { numOpt, parseArgs, splitHostPort, udpType } from './args';

const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(): Promise<void> {
  const { positional, opts } = parseArgs(process.argv.slice(2));
  const mode = positional[0];
  const to = opts.get('to');
  if (!mode || !to) throw new Error('usage: udp-probe echo|until-echo|send --to HOST:PORT [...]');
  const { host, port } = splitHostPort(to);
  const tag = process.pid;
  const sock = dgram.createSocket({ type: udpType(host), recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  let sendErrors = 0;
  sock.on('error', () => { sendErrors++; });
  await new Promise<void>((r) => sock.bind(0, udpType(host) === 'udp6' ? '::' : '0.0.0.0', () => r()));
  const send = (b: Buffer) => sock.send(b, port, host, (err) => { if (err) sendErrors++; });

  if (mode === 'echo') {
    const count = numOpt(opts, 'count', 200);
    const min = numOpt(opts, 'min', 16);
    const max = numOpt(opts, 'max', 1200);
    const rate = numOpt(opts, 'rate', 500);
    const wait = numOpt(opts, 'wait', 3000);
    const random = opts.get('random') === '1';
    // Random mode: the datagrams sent, by their first 8 bytes (random, so unique in practice).
    const sentRandom = new Map<string, { seq: number; buf: Buffer }>();
    const makeRandom = (seq: number): Buffer => {
      const b = crypto.randomBytes(min + crypto.randomInt(max - min + 1));
      sentRandom.set(b.toString('hex', 0, 8), { seq, buf: b });
      return b;
    };
    const matchRandom = (msg: Buffer): number => {
      const e = msg.length >= 8 ? sentRandom.get(msg.toString('hex', 0, 8)) : undefined;
      return e && e.buf.equals(msg) ? e.seq : -1;
    };
    let lastArrival = 0;
    let maxGap = 0;
    const sentAt = new Float64Array(count);
    const got = new Uint8Array(count);
    const rtts: number[] = [];
    let received = 0;
    let bad = 0;
    let dup = 0;
    let sent = 0;
    const t0 = performance.now();
    let resolveAll!: () => void;
    const allIn = new Promise<void>((r) => { resolveAll = r; });
    sock.on('message', (msg) => {
      const seq = random ? matchRandom(msg) : checkDatagram(msg, MAGIC_ECHO, tag);
      if (seq < 0 || seq >= count) { bad++; return; }
      const now = performance.now();
      maxGap = Math.max(maxGap, now - lastArrival);
      lastArrival = now;
      if (got[seq]) { dup++; return; }
      got[seq] = 1;
      received++;
      rtts.push(performance.now() - sentAt[seq]);
      if (received === count) resolveAll();
    });
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const due = Math.min(count, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
        while (sent < due) {
          sentAt[sent] = performance.now();
          if (sent === 0) lastArrival = sentAt[0];
          send(random ? makeRandom(sent) : makeDatagram(MAGIC_ECHO, sent, mixedSize(sent, min, max), tag));
          sent++;
        }
        if (sent >= count) { clearInterval(tick); resolve(); }
      }, 2);
    });
    let timer: NodeJS.Timeout | undefined;
    // A stall that lasts to the end of sending is a gap too.
    maxGap = Math.max(maxGap, performance.now() - lastArrival);
    await Promise.race([allIn, new Promise<void>((r) => { timer = setTimeout(r, wait); })]);
    clearTimeout(timer);
    rtts.sort((a, b) => a - b);
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    out({
      mode, sent, received, bad, dup, sendErrors, ratio: received / count,
      rttMs: { p50: r3(percentile(rtts, 50)), p99: r3(percentile(rtts, 99)), max: r3(rtts[rtts.length - 1] ?? NaN) },
      elapsedMs: Math.round(performance.now() - t0), maxGapMs: Math.round(maxGap),
    });
  } else if (mode === 'until-echo') {
    const interval = numOpt(opts, 'interval', 50);
    const timeout = numOpt(opts, 'timeout', 30000);
    const size = numOpt(opts, 'size', 64);
    const t0 = performance.now();
    let sent = 0;
    const res = await new Promise<{ ok: boolean; ms: number; at: number }>((resolve) => {
      const finish = (ok: boolean) => { clearInterval(tick); clearTimeout(limit); resolve({ ok, ms: Math.round(performance.now() - t0), at: Date.now() }); };
      sock.on('message', (msg) => { if (checkDatagram(msg, MAGIC_ECHO, tag) >= 0) finish(true); });
      const tick = setInterval(() => { send(makeDatagram(MAGIC_ECHO, sent++, size, tag)); }, interval);
      const limit = setTimeout(() => finish(false), timeout);
      send(makeDatagram(MAGIC_ECHO, sent++, size, tag));
    });
    out({ mode, ...res, sent, sendErrors });
  } else if (mode === 'send') {
    const count = numOpt(opts, 'count', 10);
    const interval = numOpt(opts, 'interval', 500);
    const size = numOpt(opts, 'size', 200);
    for (let i = 0; i < count; i++) {
      send(makeDatagram(MAGIC_SINK, i, size, tag));
      if (i + 1 < count) await new Promise((r) => setTimeout(r, interval));
    }
    await new Promise((r) => setTimeout(r, 50));
    out({ mode, sent: count, sendErrors, localPort: sock.address().port });
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  sock.close();
}

if (require.main === module) {
  main().then(() => process.exit(0), (e) => { process.stderr.write(`udp-probe: ${e instanceof Error ? e.message : e}\n`); process.exit(2); });
}
