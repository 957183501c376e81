// Active probes served for real (src/tunnel/decoy.ts): a plain TCP client connects to a listener of the
// addon's watcher, its connection is handed back to the kernel and given to a ProbeServer, which
// splices it to a decoy or hangs up. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { WatcherEvent } from '../../src/io/native';
import { nativeIo } from '../../src/io/native-io';
import { PROBE_LIMITS, ProbeLimits, ProbeServer } from '../../src/tunnel/decoy';
import { LO, waitFor, newWatcher, listenOnFreePort } from './helpers';

type Accepted = Extract<WatcherEvent, { type: 'accepted' }>;

/** A watcher listener whose every accepted connection is handed back and given to `serve`. */
function probeListener(serve: (fd: number) => void) {
  const w = newWatcher();
  const { port } = listenOnFreePort(w.watcher);
  const seen = new Set<number>();
  const timer = setInterval(() => {
    for (const e of w.events) {
      if (e.type !== 'accepted' || seen.has(e.fd)) continue;
      seen.add(e.fd);
      w.watcher.handBack((e as Accepted).fd);
      serve(e.fd);
    }
  }, 5);
  return { port, stop: () => { clearInterval(timer); w.watcher.stop(); } };
}

/**
 * A plain TCP client that writes `request` at once and collects the answer. Half-open allowed: a FIN
 * from the other side shows as ended(), and the client's own side stays open until it ends it.
 */
function rawClient(port: number, request: string) {
  const sock = net.connect({ port, host: LO, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let ended = false;
  let closed = false;
  sock.on('data', (d) => chunks.push(d));
  sock.on('end', () => (ended = true));
  sock.on('close', () => (closed = true));
  sock.on('error', () => {});
  sock.write(request);
  return { sock, text: () => Buffer.concat(chunks).toString(), ended: () => ended, closed: () => closed };
}

async function decoyHttp(): Promise<{ server: http.Server; port: number; requests: string[] }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers['user-agent'] ?? ''}`);
    res.setHeader('Connection', 'close');
    res.end('<h1>It works!</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, LO, resolve));
  return { server, port: (server.address() as net.AddressInfo).port, requests };
}

test('decoy: a probe handed back is spliced to the decoy; the client gets its page', async () => {
  const decoy = await decoyHttp();
  // Through the production TunnelIo: nativeIo({ decoy }).serveProbe.
  const io = nativeIo({ decoy: { host: LO, port: decoy.port } });
  const l = probeListener((fd) => io.serveProbe(fd));
  try {
    // A real HTTP client: its request is sent before the hand-back and dropped by the watcher's
    // filter, so what reaches the decoy is the client's retransmission.
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get({ host: LO, port: l.port, path: '/probe', headers: { 'user-agent': 'prober/1' } }, (r) => {
        let body = '';
        r.on('data', (d) => (body += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.setTimeout(8000, () => req.destroy(new Error('no answer from the decoy')));
    });
    assert.deepEqual(res, { status: 200, body: '<h1>It works!</h1>' });
    assert.deepEqual(decoy.requests, ['GET /probe prober/1']);
  } finally {
    l.stop();
    decoy.server.close();
  }
});

test('decoy: half-closes pass both ways; the pair closes once both directions are done', async () => {
  // A decoy that answers only after the client's FIN, then closes its side.
  const decoyEnds: string[] = [];
  const decoy = net.createServer({ allowHalfOpen: true }, (s) => {
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => {
      decoyEnds.push(got);
      s.end(`you said ${got.length} bytes`);
    });
  });
  await new Promise<void>((resolve) => decoy.listen(0, LO, resolve));
  const probes = new ProbeServer({ host: LO, port: (decoy.address() as net.AddressInfo).port });
  const l = probeListener((fd) => probes.serveProbe(fd));
  try {
    const c = rawClient(l.port, 'hello decoy');
    c.sock.end(); // FIN right after the request
    await waitFor(() => c.ended(), 8000, "the decoy's answer and FIN");
    assert.deepEqual(decoyEnds, ['hello decoy'], "the client's FIN reached the decoy after its bytes");
    assert.equal(c.text(), 'you said 11 bytes');
    await waitFor(() => probes.stats().active === 0, 3000, 'the pair to close');
    assert.deepEqual(probes.stats(), { served: 1, refused: 0, active: 0 });
  } finally {
    l.stop();
    probes.close();
    decoy.close();
  }
});

test('decoy: without a decoy the client sees EOF within 5 s and nothing else', async () => {
  const probes = new ProbeServer();
  const l = probeListener((fd) => probes.serveProbe(fd));
  try {
    const started = Date.now();
    const c = rawClient(l.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => c.ended(), 5000, 'EOF');
    assert.equal(c.text(), '', 'no bytes, just a FIN');
    assert.ok(Date.now() - started < 5000);
    // The client's close releases the probe (the limits test covers a client that never closes).
    c.sock.destroy();
    await waitFor(() => probes.stats().active === 0, 3000, 'the probe to be released');
    assert.deepEqual(PROBE_LIMITS, { idleMs: 60_000, maxActive: 64, lingerMs: 5_000 });
  } finally {
    l.stop();
    probes.close();
  }
});

test('decoy: limits: at most maxActive probes, the rest closed at once; idle pairs and lingering hang-ups torn down', async () => {
  // A decoy that reads and never answers: only the idle timeout ends its connections.
  const decoyClosed: number[] = [];
  const decoy = net.createServer((s) => {
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => decoyClosed.push(Date.now()));
  });
  await new Promise<void>((resolve) => decoy.listen(0, LO, resolve));
  const limits: ProbeLimits = { idleMs: 300, maxActive: 2, lingerMs: 300 };
  const probes = new ProbeServer({ host: LO, port: (decoy.address() as net.AddressInfo).port }, limits);
  const l = probeListener((fd) => probes.serveProbe(fd));
  try {
    const startedAt = Date.now();
    const a = rawClient(l.port, 'one');
    const b = rawClient(l.port, 'two');
    await waitFor(() => probes.stats().active === 2, 3000, 'two probes served');
    const c = rawClient(l.port, 'three');
    await waitFor(() => c.ended(), 3000, 'the third probe closed at once');
    assert.equal(c.text(), '');
    assert.deepEqual(probes.stats(), { served: 2, refused: 1, active: 2 });
    // Silence on both pairs: torn down after idleMs, decoy side included.
    await waitFor(() => a.ended() && b.ended(), 3000, 'idle pairs torn down');
    assert.ok(Date.now() - startedAt >= limits.idleMs, 'not before the idle timeout');
    await waitFor(() => decoyClosed.length === 2, 3000, "the decoy's ends closed too");
    assert.equal(probes.stats().active, 0);
  } finally {
    l.stop();
    probes.close();
    decoy.close();
  }

  // Without a decoy, a client that never closes its side is cut off after lingerMs.
  const hangUp = new ProbeServer(undefined, limits);
  const l2 = probeListener((fd) => hangUp.serveProbe(fd));
  try {
    const lingerFrom = Date.now();
    const d = rawClient(l2.port, 'hello?');
    await waitFor(() => d.ended(), 3000, 'FIN');
    assert.equal(d.closed(), false, 'still half-open: the client did not close');
    assert.equal(hangUp.stats().active, 1);
    await waitFor(() => hangUp.stats().active === 0, 3000, 'the probe released after lingerMs');
    assert.ok(Date.now() - lingerFrom >= limits.lingerMs, 'not before lingerMs');
  } finally {
    l2.stop();
    hangUp.close();
  }
});

test('decoy: an unreachable decoy closes the probe', async () => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, LO, resolve));
  const deadPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const probes = new ProbeServer({ host: LO, port: deadPort });
  const l = probeListener((fd) => probes.serveProbe(fd));
  try {
    const c = rawClient(l.port, 'GET / HTTP/1.1\r\n\r\n');
    await waitFor(() => c.ended(), 5000, 'the probe closed');
    assert.equal(c.text(), '');
    await waitFor(() => probes.stats().active === 0, 3000, 'released');
  } finally {
    l.stop();
    probes.close();
  }
});
