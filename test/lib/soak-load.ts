// Soak load for the tests, run inside a namespace: many app flows that come and go, each sending
// datagrams to an echo service at a steady total rate, every echo checked byte for byte.
//
//   soak-load --to H:P [--flows 200] [--rate 5000] [--seconds 240] [--churn 20] [--min 64] [--max 1200]
//
// Every second `churn` flows stop sending and new ones (new sockets, new source ports) take their
// place; a stopped flow keeps listening for 2 s, for echoes still on the way, then closes. A datagram
// is [flow u32][seq u32][bytes derived from both], so an echo names its datagram and can be checked.
// Prints a progress line {"t",sent,received} every 10 s and one result line at the end:
// {"result":{sent,received,bad,dup,flowsOpened,ratio}}.
import * as dgram from 'dgram';
import { numOpt, parseArgs, splitHostPort } from './args';

const GRACE_MS = 2000;

function fill(buf: Buffer, flow: number, seq: number): void {
  buf.writeUInt32BE(flow, 0);
  buf.writeUInt32BE(seq, 4);
  let x = (flow * 2654435761 + seq * 40503) >>> 0;
  for (let i = 8; i < buf.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    buf[i] = x >>> 24;
  }
}

function sizeOf(flow: number, seq: number, min: number, max: number): number {
  return min + (((flow * 7919 + seq * 104729) >>> 0) % (max - min + 1));
}

interface Flow { id: number; sock: dgram.Socket; seq: number; got: Uint8Array; retiredAt: number }

async function main(): Promise<void> {
  const { opts } = parseArgs(process.argv.slice(2));
  const to = opts.get('to');
  if (!to) throw new Error('usage: soak-load --to HOST:PORT [...]');
  const { host, port } = splitHostPort(to);
  const nFlows = numOpt(opts, 'flows', 200);
  const rate = numOpt(opts, 'rate', 5000);
  const seconds = numOpt(opts, 'seconds', 240);
  const churn = numOpt(opts, 'churn', 20);
  const min = Math.max(8, numOpt(opts, 'min', 64));
  const max = Math.max(min, numOpt(opts, 'max', 1200));
  let sent = 0, received = 0, bad = 0, dup = 0, nextId = 1;
  const live: Flow[] = [];
  const retired: Flow[] = [];
  const check = Buffer.alloc(max);

  const open = (): Flow => {
    const f: Flow = { id: nextId++, sock: dgram.createSocket('udp4'), seq: 0, got: new Uint8Array(1024), retiredAt: 0 };
    f.sock.on('error', () => undefined);
    f.sock.on('message', (msg) => {
      const seq = msg.length >= 8 ? msg.readUInt32BE(4) : -1;
      if (msg.length < 8 || msg.readUInt32BE(0) !== f.id || seq >= f.seq || msg.length !== sizeOf(f.id, seq, min, max)) { bad++; return; }
      const c = check.subarray(0, msg.length);
      fill(c, f.id, seq);
      if (!c.equals(msg)) { bad++; return; }
      if (f.got[seq >> 3] & (1 << (seq & 7))) { dup++; return; }
      f.got[seq >> 3] |= 1 << (seq & 7);
      received++;
    });
    f.sock.bind(0, '0.0.0.0');
    return f;
  };
  const send = (f: Flow) => {
    const seq = f.seq++;
    if ((seq >> 3) >= f.got.length) {
      const g = new Uint8Array(f.got.length * 2);
      g.set(f.got);
      f.got = g;
    }
    const b = Buffer.allocUnsafe(sizeOf(f.id, seq, min, max));
    fill(b, f.id, seq);
    f.sock.send(b, port, host);
    sent++;
  };
  for (let i = 0; i < nFlows; i++) live.push(open());

  const t0 = Date.now();
  let rr = 0;
  let lastChurn = t0;
  let lastReport = t0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      const el = now - t0;
      if (el >= seconds * 1000) {
        clearInterval(timer);
        return resolve();
      }
      const due = Math.floor((el / 1000) * rate) - sent;
      for (let i = 0; i < Math.min(due, rate); i++) send(live[rr++ % live.length]);
      if (now - lastChurn >= 1000) {
        lastChurn = now;
        for (let i = 0; i < churn && live.length > 0; i++) {
          const f = live.splice(Math.floor(Math.random() * live.length), 1)[0];
          f.retiredAt = now;
          retired.push(f);
          live.push(open());
        }
        while (retired.length && now - retired[0].retiredAt >= GRACE_MS) retired.shift()!.sock.close();
      }
      if (now - lastReport >= 10_000) {
        lastReport = now;
        process.stdout.write(`${JSON.stringify({ t: Math.round(el / 1000), sent, received })}\n`);
      }
    }, 5);
  });
  await new Promise((r) => setTimeout(r, GRACE_MS));
  for (const f of [...live, ...retired]) f.sock.close();
  process.stdout.write(`${JSON.stringify({ result: { sent, received, bad, dup, flowsOpened: nextId - 1, ratio: sent ? received / sent : 0 } })}\n`);
}

main().catch((e) => {
  process.stderr.write(`soak-load: ${e instanceof Error ? e.message : e}\n`);
  process.exit(1);
});
