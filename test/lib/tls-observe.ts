// What tshark and ndpiReader say about a connection that opens the way an rsock connection does under
// --obfs=tls: the TLS shapes from src/core on a TCP flow written to a pcap file. Each check returns
// the problems it found (empty: the observer saw a normal TLS 1.3 connection to that SNI), with the
// observer's own words, so a failing test says what the observer objected to.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { APP_DATA_HEADER, buildClientHello, buildServerHello, writeAppDataHeader } from '../../src/core/tls-shape';
import { PcapWriter, TcpFlow } from './pcap-writer';
import { exec } from './proc';

export interface FlowSpec {
  sni: string;
  port: number;
  /** Spoils the ClientHello record (its bytes, in place) before it is sent. */
  spoilHello?: (ch: Buffer) => void;
  /** Spoils the frames before the file is written. */
  spoilFrames?: (w: PcapWriter) => void;
}

export interface BuiltFlow {
  file: string;
  /** Inner lengths of the application-data records, in the order sent. */
  appRecords: number[];
}

/** Writes the flow to dir/name.pcap: handshake, ClientHello, ServerHello+CCS, records both ways, FINs. */
export function writeTlsFlow(dir: string, name: string, spec: FlowSpec): BuiltFlow {
  const w = new PcapWriter();
  const flow = new TcpFlow(w, { ip: '192.0.2.10', port: 40000 + crypto.randomInt(20000) }, { ip: '198.51.100.20', port: spec.port });
  flow.handshake();
  const sid = crypto.randomBytes(32);
  const ch = Buffer.alloc(600);
  const chLen = buildClientHello(ch, 0, {
    sni: spec.sni, random: crypto.randomBytes(32), sessionId: sid, keyShare: crypto.randomBytes(32), grease: crypto.randomInt(65536),
  });
  spec.spoilHello?.(ch.subarray(0, chLen));
  flow.send(true, ch.subarray(0, chLen));
  const sh = Buffer.alloc(200);
  const shLen = buildServerHello(sh, 0, { random: crypto.randomBytes(32), sessionIdEcho: sid, keyShare: crypto.randomBytes(32) });
  flow.send(false, sh.subarray(0, shLen));
  const appRecords: number[] = [];
  const record = (inner: number) => {
    const r = Buffer.alloc(APP_DATA_HEADER + inner);
    writeAppDataHeader(r, 0, inner);
    crypto.randomBytes(inner).copy(r, APP_DATA_HEADER);
    appRecords.push(inner);
    return r;
  };
  for (const [fromClient, sizes] of [[true, [17, 64, 517]], [false, [1400, 1400, 233]], [true, [1400, 40]], [false, [17, 999]]] as const) {
    for (const n of sizes) flow.send(fromClient, record(n));
  }
  flow.send(true, Buffer.concat([record(30), record(300)])); // two records in one segment, as Nagle or GRO make
  flow.close();
  spec.spoilFrames?.(w);
  const file = path.join(dir, `${name}.pcap`);
  w.save(file);
  return { file, appRecords };
}

export interface Verdict {
  problems: string[];
  /** The observer's output, for the test log and the report. */
  output: string;
}

const EXPERT_WARN = 0x00600000; // tshark's severities: chat 0x200000, note 0x400000, warn 0x600000, error 0x800000

/** tshark's TLS dissector, with IP and TCP checksums verified. */
export async function tsharkVerdict(file: string, sni: string, port: number, appRecords: number[]): Promise<Verdict> {
  const fields = ['frame.number', 'tls.record.content_type', 'tls.record.opaque_type', 'tls.record.length', 'tls.handshake.type',
    'tls.handshake.extensions_server_name', 'tls.handshake.extensions_server_name_type', 'tls.handshake.ja3', 'tls.handshake.extensions.supported_version', '_ws.malformed',
    '_ws.expert.severity', '_ws.expert.message'];
  const r = await exec(['tshark', '-n', '-r', file, '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE',
    '-d', `tcp.port==${port},tls`, '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=;',
    ...fields.flatMap((f) => ['-e', f])], { allowFail: true, timeoutMs: 60_000 });
  const problems: string[] = [];
  if (r.code !== 0) problems.push(`tshark exited ${r.code}: ${r.stderr.trim()}`);
  const rows = r.stdout.split('\n').filter((l) => l.length > 0).map((l) => {
    const v = l.split('\t');
    return Object.fromEntries(fields.map((f, i) => [f, v[i] ?? ''])) as Record<string, string>;
  });
  const all = (f: string) => rows.flatMap((row) => (row[f] ? row[f].split(';') : []));
  for (const row of rows) {
    if (row['_ws.malformed']) problems.push(`frame ${row['frame.number']}: malformed`);
    const sev = row['_ws.expert.severity'].split(';');
    const msg = row['_ws.expert.message'].split(';');
    sev.forEach((s, i) => {
      if (Number(s) >= EXPERT_WARN) problems.push(`frame ${row['frame.number']}: expert ${Number(s) >= 0x800000 ? 'error' : 'warning'}: ${msg[i]}`);
    });
  }
  const types = all('tls.handshake.type');
  if (types.join(',') !== '1,2') problems.push(`handshake types ${JSON.stringify(types)}, want ClientHello (1) then ServerHello (2)`);
  const names = all('tls.handshake.extensions_server_name');
  if (names.length !== 1 || names[0] !== sni) problems.push(`SNI ${JSON.stringify(names)}, want ${sni}`);
  // Both observers take a name of any type as the SNI; a server takes only host_name (0).
  const nameTypes = all('tls.handshake.extensions_server_name_type');
  if (nameTypes.join(',') !== '0') problems.push(`server name types ${JSON.stringify(nameTypes)}, want host_name (0)`);
  if (!all('tls.record.content_type').includes('20')) problems.push('no ChangeCipherSpec record');
  if (!all('tls.handshake.extensions.supported_version').includes('0x0304')) problems.push('no TLS 1.3 in supported_versions');
  const appLens = rows.filter((row) => row['tls.record.opaque_type']).flatMap((row) => {
    const t = row['tls.record.opaque_type'].split(';');
    const lens = row['tls.record.length'].split(';');
    return lens.slice(lens.length - t.length).map(Number); // opaque (1.3) records come after any plain ones
  });
  if (appLens.join(',') !== appRecords.join(',')) problems.push(`application-data records ${appLens.join(',')}, want ${appRecords.join(',')}`);
  return { problems, output: r.stdout };
}

/** nDPI's flow line for the file's one flow, with its bracketed fields split out. */
export interface NdpiFlow {
  line: string;
  proto: string;
  sni: string | null;
  risks: string[];
  fields: string[];
}

export function parseNdpiFlows(out: string): NdpiFlow[] {
  return out.split('\n').filter((l) => /^\s+\d+\s+TCP\s/.test(l)).map((line) => {
    const fields = [...line.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]);
    const get = (k: string) => fields.find((f) => f.startsWith(`${k}: `))?.slice(k.length + 2) ?? null;
    const risk = get('Risk');
    return {
      line: line.trim(),
      proto: get('proto') ?? '',
      sni: get('Hostname/SNI'),
      risks: risk ? risk.split('**').map((s) => s.trim()).filter((s) => s.length > 0) : [],
      fields,
    };
  });
}

/** Risks nDPI 4.2 raises for any TLS server off port 443: the port, not the traffic. */
const PORT_RISK = 'Known Protocol on Non Standard Port';

export async function ndpiVerdict(file: string, sni: string, port: number): Promise<Verdict> {
  const r = await exec(['ndpiReader', '-i', file, '-v', '2'], { allowFail: true, timeoutMs: 60_000 });
  const problems: string[] = [];
  if (r.code !== 0) problems.push(`ndpiReader exited ${r.code}: ${r.stderr.trim()}`);
  const flows = parseNdpiFlows(r.stdout);
  if (flows.length !== 1) {
    problems.push(`${flows.length} flows, want 1`);
    return { problems, output: r.stdout };
  }
  const f = flows[0];
  if (!/^91(\.\d+)?\/TLS(\.\w+)?$/.test(f.proto)) problems.push(`classified ${f.proto}, want TLS (91) or a TLS sub-protocol`);
  if (f.sni !== sni) problems.push(`Hostname/SNI ${JSON.stringify(f.sni)}, want ${sni}`);
  for (const want of ['Encrypted', 'Confidence: DPI', 'TLSv1.3', 'Cipher: TLS_AES_128_GCM_SHA256']) {
    if (!f.fields.includes(want)) problems.push(`no [${want}]`);
  }
  for (const risk of f.risks) if (!(risk === PORT_RISK && port !== 443)) problems.push(`risk: ${risk}`);
  return { problems, output: f.line };
}

/** A directory for the pcap files, kept when a test fails so the files can be opened in Wireshark. */
export function pcapDir(): string {
  return fs.mkdtempSync('/tmp/rsock-test-tls-');
}
