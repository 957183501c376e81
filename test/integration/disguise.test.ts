// What a censor sees (issue 7): a capture at the router, on its server-facing veth, while echo
// traffic of random bytes runs through the tunnel, read by our own analyses (TCP fidelity, plaintext
// structure, the fully-encrypted-traffic rule), by Wireshark's TLS dissector and by nDPI.
// Three tunnel runs: default flags (--obfs=tls, SNI www.microsoft.com), --sni=NAME, --obfs=none.
// A control run of genuine TLS 1.3 between the kernels of the same namespaces must pass every
// analysis, so a failure on the tunnel is the tunnel's, not the analysis's.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as path from 'path';
import { ADDR, Topology } from '../lib/netns';
import { exec, sleep } from '../lib/proc';
import { PORT_MAX, PORT_MIN, RsockOptions, startTunnel } from '../lib/rsock';
import { EchoResult, startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';
import { startCapture, stopCapture } from '../lib/capture';
import { readPcap } from '../lib/pcap';
import { bulkPayloads, Conn, connections, fetRule, fidelity, firstPayloadVerdicts, lengthFields, offsetBias } from '../lib/wire-analysis';
import { isTlsProto, ndpiFlows, tsharkTls } from '../lib/tls-dissect';

const TUNNEL_PORTS = Array.from({ length: PORT_MAX - PORT_MIN + 1 }, (_, i) => PORT_MIN + i);
const CONTROL_PORT = 8443;
/** The SNI rsock-client sends without --sni (docs: the v2 contract). */
const DEFAULT_SNI = 'www.microsoft.com';
/** Bytes of the TLS record header, skipped by the structure analyses in tls mode. */
const TLS_HDR = 5;
const ECHO = { count: 2500, rate: 500, min: 16, max: 1200, random: true, waitMs: 3000 };

const topo = new Topology();
const sniName = `static-${topo.id}.example.com`;

interface Run { name: string; file: string; conns: Conn[]; echo?: EchoResult; ports: number[] }

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
}));
after(() => topo.destroy());

/** Captures at the router while a tunnel with these options carries random echo traffic. */
/**
 * The observers judge every segment, so a capture that lost some (tcpdump fell behind on a loaded
 * machine: its TSvals then seem to be echoed from nowhere) is taken again, up to three times.
 */
async function captureTunnel(name: string, server: RsockOptions, client: RsockOptions): Promise<Run> {
  let dropped = 0;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const r = await captureTunnelOnce(name, server, client);
    if (r.dropped === 0) return r.run;
    dropped = r.dropped;
    console.log(`disguise ${name}: the capture lost ${dropped} packets (attempt ${attempt}); capturing again`);
  }
  throw new Error(`${name}: the capture lost ${dropped} packets three times: the machine is too loaded to observe the tunnel`);
}

async function captureTunnelOnce(name: string, server: RsockOptions, client: RsockOptions): Promise<{ run: Run; dropped: number }> {
  let dropped = 0;
  const cap = await startCapture(topo, 'router', topo.dev.routerServer, name, { maxMs: 45_000, maxPackets: 200_000 });
  let echo: EchoResult | undefined;
  try {
    // The capture starts before the tunnel, so every connection's handshake and first payload are in it.
    const procs = await startTunnel(topo, { server: { keepalive: 2, ...server }, client: { keepalive: 2, ...client } });
    try {
      const first = await untilEcho(topo, 10_000);
      assert.ok(first.ok, `${name}: no echo through the tunnel within 10 s`);
      echo = await udpEcho(topo, ECHO);
      await sleep(500); // let the last ACKs cross before the capture stops
    } finally {
      await procs.client.stop();
      await procs.server.stop();
    }
  } finally {
    // A tunnel that failed to start may leave one of its programs behind: stop it by PID.
    for (const p of topo.procs) if (p.name.startsWith('rsock-') && p.running) await p.stop();
    const st = await stopCapture(cap);
    console.log(`disguise ${name}: capture ${st.captured} packets, ${st.droppedByKernel} dropped by the kernel`);
    dropped = st.droppedByKernel;
  }
  if (dropped > 0) return { run: { name, file: cap.file, conns: [], echo, ports: TUNNEL_PORTS }, dropped };
  const isServer = (ip: string, port: number) => ip === ADDR.server && TUNNEL_PORTS.includes(port);
  const conns = connections(readPcap(cap.file), isServer);
  console.log(`disguise ${name}: ${conns.length} connections; echo ${echo?.received}/${echo?.sent}`);
  assert.ok((echo?.ratio ?? 0) >= 0.95, `${name}: only ${echo?.received}/${echo?.sent} echoed: the capture holds too little tunnel traffic`);
  return { run: { name, file: cap.file, conns, echo, ports: TUNNEL_PORTS }, dropped: 0 };
}

/** Genuine TLS 1.3 over kernel TCP from the client namespace to the server namespace, captured the same way. */
async function captureControl(): Promise<Run> {
  const cert = path.join(topo.logDir, 'control-cert.pem');
  const key = path.join(topo.logDir, 'control-key.pem');
  await exec(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${sniName}`,
    '-days', '1', '-keyout', key, '-out', cert]);
  const srv = topo.spawnHelper('server', 'tls-echo.js', ['serve', '--listen', `${ADDR.server}:${CONTROL_PORT}`, '--cert', cert, '--key', key], 'tls-control-serve');
  await srv.waitFor(/"ready"/, 5000);
  const cap = await startCapture(topo, 'router', topo.dev.routerServer, 'control', { maxMs: 45_000 });
  try {
    const r = await topo.execHelper('client', 'tls-echo.js', ['send', '--connect', `${ADDR.server}:${CONTROL_PORT}`, '--servername', sniName,
      '--count', '1500', '--rate', '300'], { timeoutMs: 30_000 });
    console.log(`disguise control: ${r.stdout.trim()}`);
    await sleep(300);
  } finally {
    await stopCapture(cap);
    await srv.stop();
  }
  const conns = connections(readPcap(cap.file), (ip, port) => ip === ADDR.server && port === CONTROL_PORT);
  return { name: 'control', file: cap.file, conns, ports: [CONTROL_PORT] };
}

// Each run is captured once, by the first test that needs it.
const runs = new Map<string, Promise<Run>>();
const run = (name: string, make: () => Promise<Run>) => {
  if (!runs.has(name)) runs.set(name, make());
  return runs.get(name)!;
};
const control = () => run('control', captureControl);
const tlsDefault = () => run('default', () => captureTunnel('default', {}, {}));
const tlsSni = () => run('sni', () => captureTunnel('sni', {}, { sni: sniName }));
const plain = () => run('obfs-none', () => captureTunnel('obfs-none', { obfs: 'none' }, { obfs: 'none' }));

function checkFidelity(r: Run): void {
  const f = fidelity(r.conns);
  console.log(`disguise ${r.name} fidelity: ${JSON.stringify({ ...f, examples: undefined })}`);
  const why = `\n${f.examples.join('\n')}`;
  assert.ok(f.withHandshake >= r.ports.length, `${r.name}: only ${f.withHandshake} connections with a captured handshake`);
  assert.equal(f.tsNegotiated, f.withHandshake, `${r.name}: the kernels did not negotiate timestamps on every connection`);
  assert.ok(f.dataSegs >= 1000, `${r.name}: only ${f.dataSegs} data segments captured`);
  assert.equal(f.dataSegsWithTs, f.dataSegs,
    `${r.name}: ${f.dataSegs - f.dataSegsWithTs} of ${f.dataSegs} data segments (${pct(1 - f.dataSegsWithTs / f.dataSegs)}) carry no timestamp option${why}`);
  assert.ok(f.tsPairs > 0, `${r.name}: no TSval pairs to compare`);
  assert.equal(f.tsBackwards, 0, `${r.name}: TSval went backwards ${f.tsBackwards} times of ${f.tsPairs}${why}`);
  assert.ok(f.ecrChecked > 0, `${r.name}: no TSecr to check`);
  assert.equal(f.ecrUnknown, 0, `${r.name}: ${f.ecrUnknown} of ${f.ecrChecked} TSecr echo no TSval the peer sent${why}`);
  assert.equal(f.ttlMismatch, 0, `${r.name}: ${f.ttlMismatch} of ${f.ipChecked} data segments have another TTL than the handshake${why}`);
  assert.equal(f.dfMismatch, 0, `${r.name}: ${f.dfMismatch} of ${f.ipChecked} data segments have another DF than the handshake${why}`);
  assert.ok(f.ipIdDirs > 0, `${r.name}: no direction with enough segments to judge IP ids`);
  assert.equal(f.ipIdConstant, 0, `${r.name}: ${f.ipIdConstant} of ${f.ipIdDirs} directions have one constant IP id${why}`);
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

function checkStructure(r: Run, skip: number): void {
  // Both directions are measured and printed before anything is asserted, so a failure shows all figures.
  const res = (['c2s', 's2c'] as const).map((dir) => {
    const payloads = bulkPayloads(r.conns, dir);
    const ob = offsetBias(payloads, skip);
    const lf = lengthFields(payloads, skip);
    console.log(`disguise ${r.name} ${dir}: ${payloads.length} payloads; ${ob.checked} offsets checked, ${ob.flagged.length} with one value in > 10 % ` +
      `(worst ${JSON.stringify(ob.worst)}); length fields: ${lf.flagged.length} of ${lf.checked} (worst ${JSON.stringify(lf.worst)})`);
    return { dir, n: payloads.length, ob, lf };
  });
  for (const { dir, n, ob, lf } of res) {
    assert.ok(ob.checked >= 64, `${r.name} ${dir}: only ${ob.checked} offsets had enough segments to judge`);
    assert.deepEqual(ob.flagged.map((x) => `${x.where} ${x.offset}: 0x${x.value.toString(16)} in ${pct(x.share)}`), [],
      `${r.name} ${dir}: byte offsets (after ${skip} header bytes) holding one value in more than 10 % of ${n} segments`);
    assert.deepEqual(lf.flagged.map((x) => `offset ${x.offset} ${x.endian} = length - ${x.k} in ${pct(x.share)}`), [],
      `${r.name} ${dir}: plaintext length fields (after ${skip} header bytes)`);
  }
}

function checkFirstPayloads(r: Run): void {
  const v = firstPayloadVerdicts(r.conns);
  for (const x of v) console.log(`disguise ${r.name} first payload ${x.conn}: ${x.verdict.length} B ${x.head}.. popcount ${x.verdict.popcount.toFixed(2)} ` +
    `${x.verdict.flagged ? 'FLAGGED' : `exempt: ${x.verdict.exemptions.join(', ')}`}`);
  assert.ok(v.length >= r.ports.length, `${r.name}: only ${v.length} connections with a captured first payload`);
  const flagged = v.filter((x) => x.verdict.flagged);
  assert.equal(flagged.length, 0, `${r.name}: ${flagged.length} of ${v.length} first payloads flagged by the fully-encrypted rule: ${flagged.map((x) => x.conn).join(' ')}`);
}

async function checkTls(r: Run, sni: string): Promise<void> {
  const t = await tsharkTls(r.file, r.ports, sni);
  const bad = t.streams.filter((s) => s.problems.length > 0);
  console.log(`disguise ${r.name} tshark: ${t.streams.length} streams, ${bad.length} not TLS; malformed ${t.malformed}, expert errors ${t.expertErrors}` +
    (bad.length ? `; e.g. ${bad[0].problems.join('; ')}` : ''));
  assert.ok(t.streams.length >= r.ports.length, `${r.name}: tshark saw only ${t.streams.length} streams`);
  assert.deepEqual(bad.map((s) => `stream ${s.stream} (port ${s.serverPort}): ${s.problems[0]}`), [], `${r.name}: streams tshark does not see as TLS with SNI ${sni}`);
  assert.equal(t.malformed, 0, `${r.name}: ${t.malformed} malformed packets`);
  assert.equal(t.expertErrors, 0, `${r.name}: ${t.expertErrors} expert errors: ${t.errorMessages.join('; ')}`);
  const flows = await ndpiFlows(r.file, r.ports);
  const notTls = flows.filter((f) => !isTlsProto(f.proto) || f.sni !== sni);
  console.log(`disguise ${r.name} nDPI: ${flows.length} flows; ${notTls.length} not TLS with SNI ${sni}` + (notTls.length ? `; e.g. ${notTls[0].line}` : ''));
  // nDPI 4.2 once listed 9 of 10 flows of a capture (all 9 TLS with the SNI) where tshark saw all 10 as
  // TLS; it is not reproducible, so a missing flow is tolerated up to a fifth: a misclassified one never is.
  assert.ok(flows.length >= Math.ceil(r.ports.length * 0.8), `${r.name}: nDPI saw only ${flows.length} flows`);
  assert.deepEqual(notTls.map((f) => `${f.client}->${f.server}: ${f.proto} SNI ${f.sni ?? 'none'}`), [], `${r.name}: flows nDPI does not classify as TLS with SNI ${sni}`);
}

const T = { timeout: 110_000 };

test('control: genuine TLS 1.3 over kernel TCP passes every analysis (the analyses accept real traffic)', T, topo.guard(async () => {
  const r = await control();
  checkFidelity(r);
  checkStructure(r, TLS_HDR);
  checkFirstPayloads(r);
  await checkTls(r, sniName);
  // And the rule itself flags what it should: 64 random-looking bytes (fixed, so the check is stable).
  const randomish = Buffer.concat([0, 1].map((i) => crypto.createHash('sha256').update(`fet-${i}`).digest()));
  assert.ok(fetRule(randomish).flagged, 'the fully-encrypted rule must flag 64 random-looking bytes');
}));

test('default flags: every data segment carries timestamps like the kernel; TTL, DF and IP ids like the handshake', T, topo.guard(async () => {
  checkFidelity(await tlsDefault());
}));

test('default flags: no byte offset with one value in > 10 % of segments, no plaintext length field', T, topo.guard(async () => {
  checkStructure(await tlsDefault(), TLS_HDR);
}));

test('default flags: no connection\'s first payload is flagged by the fully-encrypted-traffic rule', T, topo.guard(async () => {
  checkFirstPayloads(await tlsDefault());
}));

test(`default flags: tshark and nDPI see TLS with SNI ${DEFAULT_SNI}, nothing malformed`, T, topo.guard(async () => {
  await checkTls(await tlsDefault(), DEFAULT_SNI);
}));

test('--sni=NAME: tshark and nDPI see TLS with that SNI; no plaintext structure', T, topo.guard(async () => {
  const r = await tlsSni();
  await checkTls(r, sniName);
  checkStructure(r, TLS_HDR);
}));

test('--obfs=none: timestamps and IP fields like the kernel, no plaintext structure, first payloads not flagged', T, topo.guard(async () => {
  const r = await plain();
  checkFidelity(r);
  checkStructure(r, 0);
  checkFirstPayloads(r);
}));
