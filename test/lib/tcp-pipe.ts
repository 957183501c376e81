// TCP source/sink with sha256, run inside a namespace. Prints JSON result lines on stdout.
//
//   tcp-pipe serve --listen H:P
//       For each connection: reads a 9-byte request ('S' + u64 BE n: "I send you n bytes", or
//       'R' + n: "send me n bytes"), then sinks or sources n bytes. Prints per connection
//       {op:"sink"|"source", bytes, sha256, ms, remote}. ms runs from the first to the last byte.
//   tcp-pipe send --connect H:P --bytes N [--timeout MS]
//       Sends N random bytes. Result {op:"send", bytes, sha256, ms, peerClosed}; waits (bounded) for
//       the server to close after it has everything, so ms is end to end.
//   tcp-pipe recv --connect H:P --bytes N [--timeout MS]
//       Asks for N bytes and reads them. Result {op:"recv", bytes, sha256, ms}.
import * as net from 'net';
import * as crypto from 'crypto';
import { numOpt, parseArgs, splitHostPort } from './args';

const CHUNK = 64 * 1024;
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

/** Writes n random bytes to the socket, respecting back-pressure; returns their sha256. */
async function source(sock: net.Socket, n: number): Promise<string> {
  const h = crypto.createHash('sha256');
  let left = n;
  while (left > 0) {
    const b = crypto.randomBytes(Math.min(CHUNK, left));
    h.update(b);
    left -= b.length;
    if (!sock.write(b)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => { sock.off('close', onClose); resolve(); };
        const onClose = () => { sock.off('drain', onDrain); reject(new Error(`connection closed with ${left} bytes left to send`)); };
        sock.once('drain', onDrain);
        sock.once('close', onClose);
      });
    }
  }
  return h.digest('hex');
}

function serve(listen: string): void {
  const { host, port } = splitHostPort(listen);
  const srv = net.createServer((sock) => {
    const remote = `${sock.remoteAddress}:${sock.remotePort}`;
    let head = Buffer.alloc(0);
    let op = '';
    let want = 0;
    let got = 0;
    let t0 = 0;
    const h = crypto.createHash('sha256');
    const sinkDone = () => {
      out({ op: 'sink', bytes: got, sha256: h.digest('hex'), ms: Math.round(performance.now() - t0), remote, complete: got === want });
      sock.end();
    };
    const onData = (d: Buffer) => {
      if (!op) {
        head = Buffer.concat([head, d]);
        if (head.length < 9) return;
        op = String.fromCharCode(head[0]);
        want = Number(head.readBigUInt64BE(1));
        d = head.subarray(9);
        t0 = performance.now();
        if (op === 'R') {
          sock.off('data', onData);
          source(sock, want).then(
            (sha) => { out({ op: 'source', bytes: want, sha256: sha, ms: Math.round(performance.now() - t0), remote }); sock.end(); },
            (e) => { out({ op: 'source', error: String(e), remote }); sock.destroy(); },
          );
          return;
        }
        if (op !== 'S') { out({ op: 'error', error: `bad request ${op}`, remote }); sock.destroy(); return; }
      }
      if (d.length === 0) return;
      const take = d.subarray(0, Math.max(0, want - got));
      h.update(take);
      got += take.length;
      if (got >= want) { sock.off('data', onData); sinkDone(); }
    };
    sock.on('data', onData);
    sock.on('end', () => { if (op === 'S' && got < want) sinkDone(); });
    sock.on('error', (e) => out({ op: 'error', error: e.message, remote }));
  });
  srv.listen(port, host, () => out({ ready: listen }));
  const stop = () => { srv.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function client(mode: 'send' | 'recv', to: string, n: number, timeoutMs: number): Promise<void> {
  const { host, port } = splitHostPort(to);
  const sock = net.connect({ host, port });
  sock.setNoDelay(true);
  const limit = setTimeout(() => { out({ op: mode, error: `timeout after ${timeoutMs} ms` }); process.exit(3); }, timeoutMs);
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const head = Buffer.alloc(9);
  head[0] = (mode === 'send' ? 'S' : 'R').charCodeAt(0);
  head.writeBigUInt64BE(BigInt(n), 1);
  sock.write(head);
  const t0 = performance.now();
  if (mode === 'send') {
    const closed = new Promise<void>((r) => { sock.once('close', () => r()); sock.on('data', () => undefined); });
    sock.on('error', () => undefined);
    const sha = await source(sock, n);
    await closed;
    out({ op: 'send', bytes: n, sha256: sha, ms: Math.round(performance.now() - t0), peerClosed: true });
  } else {
    const h = crypto.createHash('sha256');
    let got = 0;
    await new Promise<void>((resolve, reject) => {
      sock.on('data', (d: Buffer) => {
        const take = d.subarray(0, Math.max(0, n - got));
        h.update(take);
        got += take.length;
        if (got >= n) resolve();
      });
      sock.once('close', () => (got >= n ? resolve() : reject(new Error(`connection closed after ${got} of ${n} bytes`))));
      sock.once('error', reject);
    });
    out({ op: 'recv', bytes: got, sha256: h.digest('hex'), ms: Math.round(performance.now() - t0) });
    sock.destroy();
  }
  clearTimeout(limit);
}

if (require.main === module) {
  const { positional, opts } = parseArgs(process.argv.slice(2));
  const mode = positional[0];
  try {
    if (mode === 'serve') {
      serve(opts.get('listen') ?? '');
    } else if (mode === 'send' || mode === 'recv') {
      client(mode, opts.get('connect') ?? '', numOpt(opts, 'bytes', 1 << 20), numOpt(opts, 'timeout', 120_000)).then(
        () => process.exit(0),
        (e) => { out({ op: mode, error: String(e instanceof Error ? e.message : e) }); process.exit(2); },
      );
    } else {
      throw new Error('usage: tcp-pipe serve --listen H:P | send|recv --connect H:P --bytes N');
    }
  } catch (e) {
    process.stderr.write(`tcp-pipe: ${e instanceof Error ? e.message : e}\n`);
    process.exit(2);
  }
}
