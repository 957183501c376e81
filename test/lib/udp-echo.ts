// UDP echo target, run inside a namespace:  node udp-echo.js --bind 127.0.0.1:9999
// Echoes every datagram back to its sender, except "sink" datagrams (payload.MAGIC_SINK), which it
// only reports on stdout as a JSON line. Prints {"ready":...} once bound. Stops on SIGTERM/SIGINT.
// It also counts datagrams it has already seen (same bytes): every test datagram is unique, so a
// repeat is a datagram the tunnel delivered twice (a replay). SIGUSR2 prints
// {"stats":{echoed,sunk,dupes,distinct}} without stopping.
import * as crypto from 'crypto';
import * as dgram from 'dgram';
import { HEADER, MAGIC_SINK } from './payload';
import { parseArgs, splitHostPort, udpType } from './args';

function main(): void {
  const bindArg = parseArgs(process.argv.slice(2)).opts.get('bind');
  if (!bindArg) throw new Error('usage: udp-echo --bind HOST:PORT');
  const { host, port } = splitHostPort(bindArg);
  const sock = dgram.createSocket({ type: udpType(host), recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  let echoed = 0;
  let sunk = 0;
  let dupes = 0;
  // Digests of the datagrams seen, bounded: past the cap a new set starts (a repeat across the
  // boundary is then missed, never invented).
  const SEEN_CAP = 1_000_000;
  let seen = new Set<string>();
  const stats = () => ({ echoed, sunk, dupes, distinct: seen.size });
  sock.on('message', (msg, rinfo) => {
    const digest = crypto.createHash('sha1').update(msg).digest('base64');
    if (seen.has(digest)) dupes++;
    else {
      if (seen.size >= SEEN_CAP) seen = new Set<string>();
      seen.add(digest);
    }
    if (msg.length >= HEADER && msg.readUInt32BE(0) === MAGIC_SINK) {
      sunk++;
      process.stdout.write(JSON.stringify({ sink: msg.readUInt32BE(4), from: `${rinfo.address}:${rinfo.port}`, sunk }) + '\n');
      return;
    }
    echoed++;
    sock.send(msg, rinfo.port, rinfo.address);
  });
  sock.on('error', (e) => process.stderr.write(`udp-echo: ${e.message}\n`));
  sock.bind(port, host, () => {
    process.stdout.write(JSON.stringify({ ready: `${host}:${port}` }) + '\n');
  });
  process.on('SIGUSR2', () => process.stdout.write(JSON.stringify({ stats: stats() }) + '\n'));
  const stop = () => {
    process.stdout.write(JSON.stringify(stats()) + '\n');
    sock.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
