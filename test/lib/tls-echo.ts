// A genuine TLS 1.3 connection (Node's OpenSSL over kernel TCP), the control for the disguise
// analyses: what they must accept is what real TLS between two Linux hosts looks like.
//
//   tls-echo serve --listen H:P --cert FILE --key FILE      echoes every byte; prints {"ready":...}
//   tls-echo send --connect H:P --servername NAME [--count 1500] [--rate 300] [--min 16] [--max 1200]
//       Writes `count` chunks of random bytes (one TLS record each, Nagle off) at `rate` per second and
//       waits for all of them to come back. Result: {sent, echoedBytes, bytes, ms}
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as tls from 'tls';
import { numOpt, parseArgs, splitHostPort } from './args';

const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

async function main(): Promise<void> {
  const { positional, opts } = parseArgs(process.argv.slice(2));
  if (positional[0] === 'serve') {
    const { host, port } = splitHostPort(opts.get('listen') ?? '');
    const srv = tls.createServer({ cert: fs.readFileSync(opts.get('cert')!), key: fs.readFileSync(opts.get('key')!), minVersion: 'TLSv1.3' }, (s) => {
      s.setNoDelay(true);
      s.on('data', (d) => s.write(d));
      s.on('error', () => s.destroy());
    });
    srv.listen(port, host, () => out({ ready: `${host}:${port}` }));
    const stop = () => { srv.close(); process.exit(0); };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  if (positional[0] !== 'send') throw new Error('usage: tls-echo serve|send ...');
  const { host, port } = splitHostPort(opts.get('connect') ?? '');
  const count = numOpt(opts, 'count', 1500);
  const rate = numOpt(opts, 'rate', 300);
  const min = numOpt(opts, 'min', 16);
  const max = numOpt(opts, 'max', 1200);
  const t0 = Date.now();
  const s = tls.connect({ host, port, servername: opts.get('servername'), rejectUnauthorized: false, minVersion: 'TLSv1.3' });
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => { s.once('secureConnect', () => resolve()); s.once('error', reject); });
  let bytes = 0;
  let echoed = 0;
  s.on('data', (d: Buffer) => { echoed += d.length; });
  for (let i = 0; i < count; i++) {
    const chunk = crypto.randomBytes(min + crypto.randomInt(max - min + 1));
    bytes += chunk.length;
    s.write(chunk);
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  // Bounded wait for the echoes.
  for (let i = 0; i < 100 && echoed < bytes; i++) await new Promise((r) => setTimeout(r, 50));
  s.end();
  out({ sent: count, bytes, echoedBytes: echoed, ms: Date.now() - t0 });
  process.exit(0);
}

if (require.main === module) {
  main().catch((e) => { process.stderr.write(`tls-echo: ${e instanceof Error ? e.message : e}\n`); process.exit(2); });
}
