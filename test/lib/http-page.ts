// A plain web server for the probe tests (the decoy rsock-server splices probers to), run inside a
// namespace:  node http-page.js --listen H:P --body TEXT
// Answers every request with 200 and TEXT (and malformed requests as Node's HTTP server does: 400
// and close). Prints {"ready":...} once listening, one {"request":...} line per request.
import * as http from 'http';
import { parseArgs, splitHostPort } from './args';

function main(): void {
  const { opts } = parseArgs(process.argv.slice(2));
  const { host, port } = splitHostPort(opts.get('listen') ?? '');
  const body = opts.get('body') ?? 'hello';
  let n = 0;
  const srv = http.createServer((req, res) => {
    n++;
    process.stdout.write(JSON.stringify({ request: n, method: req.method, url: req.url, from: `${req.socket.remoteAddress}:${req.socket.remotePort}` }) + '\n');
    res.writeHead(200, { 'content-type': 'text/html', server: 'nginx' });
    res.end(body);
  });
  srv.listen(port, host, () => process.stdout.write(JSON.stringify({ ready: `${host}:${port}` }) + '\n'));
  const stop = () => { srv.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
