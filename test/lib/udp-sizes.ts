// Datagrams of random sizes and random bytes, each checked by its sha256 when it comes back, run
// inside a namespace. Prints one JSON result line on stdout.
//
//   udp-sizes --to H:P [--count 300] [--min 1] [--max 65507] [--rate 50] [--wait 3000]
//       The first datagram has `min` bytes and the second `max`; the rest are uniform in min..max.
//       Result: {sent, whole, bad, dup, sendErrors, bytesSent, minSent, maxSent, maxWhole}
//       whole: echoes whose sha256 is one sent; bad: echoes whose sha256 is none sent (a datagram
//       that came back cut short, merged or changed).
import * as crypto from 'crypto';
import * as dgram from 'dgram';
import { numOpt, parseArgs, splitHostPort } from './args';

async function main(): Promise<void> {
  const { opts } = parseArgs(process.argv.slice(2));
  const to = opts.get('to');
  if (!to) throw new Error('usage: udp-sizes --to HOST:PORT [--count N] [--min B] [--max B] [--rate N] [--wait MS]');
  const { host, port } = splitHostPort(to);
  const count = numOpt(opts, 'count', 300);
  const min = numOpt(opts, 'min', 1);
  const max = numOpt(opts, 'max', 65507);
  const rate = numOpt(opts, 'rate', 50);
  const wait = numOpt(opts, 'wait', 3000);
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 32 << 20, sendBufferSize: 32 << 20 });
  let sendErrors = 0;
  sock.on('error', () => { sendErrors++; });
  await new Promise<void>((r) => sock.bind(0, '0.0.0.0', () => r()));

  const digest = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
  /** sha256 -> size of every datagram sent; answered ones move to `seen`. */
  const sent = new Map<string, number>();
  const seen = new Set<string>();
  let whole = 0, bad = 0, dup = 0, bytesSent = 0, maxWhole = 0;
  let minSent = Infinity, maxSent = 0;
  sock.on('message', (msg) => {
    const h = digest(msg);
    if (seen.has(h)) { dup++; return; }
    if (!sent.has(h)) { bad++; return; }
    seen.add(h);
    whole++;
    maxWhole = Math.max(maxWhole, msg.length);
  });
  for (let i = 0; i < count; i++) {
    const size = i === 0 ? min : i === 1 ? max : min + crypto.randomInt(max - min + 1);
    const b = crypto.randomBytes(size);
    sent.set(digest(b), size);
    bytesSent += size;
    minSent = Math.min(minSent, size);
    maxSent = Math.max(maxSent, size);
    await new Promise<void>((r) => sock.send(b, port, host, (err) => { if (err) sendErrors++; r(); }));
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await new Promise((r) => setTimeout(r, wait));
  sock.close();
  process.stdout.write(JSON.stringify({ sent: count, whole, bad, dup, sendErrors, bytesSent, minSent, maxSent, maxWhole }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`udp-sizes: ${(e as Error).message}\n`);
  process.exit(1);
});
