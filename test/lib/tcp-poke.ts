// A prober with an ordinary kernel TCP socket, run inside a namespace: connects, sends the given
// payloads one by one, then waits and reports what came back and how the connection ended.
//
//   tcp-poke --connect H:P --hex AABB,CCDD,... [--gap 200] [--hold 3000]
//       Sends each hex payload `gap` ms apart, then waits up to `hold` ms (or until the peer closes).
//       Result: {connected, connectMs, sent, received, head (hex of the first 64 bytes received),
//                ended: 'fin' | 'reset' | 'open' | 'refused' | 'error', endMs (from connect), error}
import * as net from 'net';
import { numOpt, parseArgs, splitHostPort } from './args';

async function main(): Promise<void> {
  const { opts } = parseArgs(process.argv.slice(2));
  const { host, port } = splitHostPort(opts.get('connect') ?? '');
  const payloads = (opts.get('hex') ?? '').split(',').filter(Boolean).map((h) => Buffer.from(h, 'hex'));
  const gap = numOpt(opts, 'gap', 200);
  const hold = numOpt(opts, 'hold', 3000);
  const t0 = Date.now();
  const res = { connected: false, connectMs: -1, sent: 0, received: 0, head: '', ended: 'open', endMs: -1, error: '' };
  const got: Buffer[] = [];
  const s = net.connect({ host, port });
  s.setNoDelay(true);
  let tConn = t0;
  let finish!: () => void;
  const done = new Promise<void>((r) => { finish = r; });
  s.on('connect', () => { res.connected = true; tConn = Date.now(); res.connectMs = tConn - t0; });
  s.on('data', (d) => { res.received += d.length; if (got.reduce((a, b) => a + b.length, 0) < 64) got.push(d); });
  // 'end' is the peer's FIN; an RST surfaces as an ECONNRESET error.
  s.on('end', () => { if (res.ended === 'open') { res.ended = 'fin'; res.endMs = Date.now() - tConn; } s.end(); finish(); });
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (res.ended === 'open') {
      res.ended = e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : e.code === 'ECONNREFUSED' ? 'refused' : 'error';
      res.endMs = Date.now() - tConn;
      res.error = e.message;
    }
    finish();
  });
  await Promise.race([new Promise<void>((r) => s.once('connect', () => r())), done, new Promise((r) => setTimeout(r, 5000))]);
  if (res.connected) {
    for (const p of payloads) {
      if (res.ended !== 'open') break;
      s.write(p);
      res.sent++;
      await Promise.race([new Promise((r) => setTimeout(r, gap)), done]);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => { timer = setTimeout(r, hold); })]);
    clearTimeout(timer);
  }
  res.head = Buffer.concat(got).subarray(0, 64).toString('hex');
  s.destroy();
  process.stdout.write(JSON.stringify(res) + '\n');
}

if (require.main === module) {
  main().then(() => process.exit(0), (e) => { process.stderr.write(`tcp-poke: ${e instanceof Error ? e.message : e}\n`); process.exit(2); });
}
