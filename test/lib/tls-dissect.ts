// What off-the-shelf classifiers make of a capture: Wireshark's TLS dissector (tshark, told to
// decode the given ports as TLS) and nDPI (ndpiReader). Both read the pcap file; neither sends anything.
import { exec } from './proc';

export interface TlsStreamVerdict {
  stream: number; clientPort: number; serverPort: number;
  /** Problems found on this stream, empty when it looks like TLS throughout. */
  problems: string[];
  sni: string | undefined;
  records: number;
}

export interface TlsReport {
  streams: TlsStreamVerdict[];
  malformed: number;
  expertErrors: number;
  /** A few expert error messages, for the failure message. */
  errorMessages: string[];
}

const FIELDS = ['frame.number', 'tcp.stream', 'tcp.srcport', 'tcp.dstport', 'tcp.len', 'tls.record.content_type', 'tls.record.opaque_type',
  'tls.handshake.type', 'tls.handshake.extensions_server_name', 'tcp.reassembled_in', '_ws.malformed', '_ws.expert.severity', '_ws.expert.message'];
/** Wireshark's PI_ERROR severity, as -T fields prints it. */
const SEVERITY_ERROR = '8388608';
const HANDSHAKE = 22, CCS = 20, APP_DATA = 23;

const list = (s: string | undefined) => (s ? s.split(',').filter(Boolean) : []);

/**
 * tshark -d tcp.port==P,tls over the capture: per TCP stream to `ports`, the first client payload must
 * be a Client Hello naming `sni`, the server's first payload a Server Hello, and every later record
 * application data (a ChangeCipherSpec is allowed in each side's first two payloads, as TLS 1.3's
 * middlebox compatibility sends it). A segment without a record of its own must be part of a record
 * tshark reassembled; TCP retransmissions are skipped. Malformed packets and expert errors are counted
 * over the whole file.
 */
export async function tsharkTls(file: string, ports: number[], sni: string): Promise<TlsReport> {
  const args = ['tshark', '-r', file, '-n', ...ports.flatMap((p) => ['-d', `tcp.port==${p},tls`]), '-T', 'fields', '-E', 'separator=|',
    '-E', 'occurrence=a', '-E', 'aggregator=,', ...FIELDS.flatMap((f) => ['-e', f])];
  const r = await exec(args, { timeoutMs: 60_000 });
  const portSet = new Set(ports);
  const streams = new Map<number, TlsStreamVerdict & { seen: { c2s: number; s2c: number } }>();
  const report: TlsReport = { streams: [], malformed: 0, expertErrors: 0, errorMessages: [] };
  for (const line of r.stdout.split('\n')) {
    const f = line.split('|');
    if (f.length < FIELDS.length) continue;
    const [frame, stream, sport, dport, tlen, ctype, otype, htype, sniField, reassembledIn, malformed, severity, messages] = f;
    if (malformed) report.malformed++;
    if (list(severity).includes(SEVERITY_ERROR)) {
      report.expertErrors++;
      if (report.errorMessages.length < 5) report.errorMessages.push(`frame ${frame}: ${messages}`);
    }
    const toServer = portSet.has(Number(dport));
    if (!toServer && !portSet.has(Number(sport))) continue;
    const id = Number(stream);
    let s = streams.get(id);
    if (!s) {
      s = { stream: id, clientPort: Number(toServer ? sport : dport), serverPort: Number(toServer ? dport : sport), problems: [], sni: undefined, records: 0, seen: { c2s: 0, s2c: 0 } };
      streams.set(id, s);
    }
    // A TCP retransmission repeats bytes tshark already dissected (it shows no record again): legitimate.
    if (Number(tlen) === 0 || /retransmission/i.test(messages ?? '')) continue;
    const dir = toServer ? 'c2s' : 's2c';
    const nth = ++s.seen[dir];
    const types = [...list(ctype), ...list(otype)].map(Number);
    const hs = list(htype).map(Number);
    s.records += types.length;
    const problem = (what: string) => { if (s!.problems.length < 4) s!.problems.push(`frame ${frame} (${dir} payload #${nth}): ${what}`); };
    if (nth === 1 && dir === 'c2s') {
      if (!hs.includes(1)) problem(`first client payload is not a Client Hello (records ${types.join(',') || 'none'})`);
      s.sni = list(sniField)[0];
      if (s.sni !== sni) problem(`SNI ${s.sni ?? 'absent'}, expected ${sni}`);
    } else if (nth === 1 && dir === 's2c') {
      if (!hs.includes(2)) problem(`first server payload is not a Server Hello (records ${types.join(',') || 'none'})`);
    } else if (types.length === 0) {
      if (!reassembledIn) problem('payload is no TLS record (nor part of a reassembled one)');
    } else {
      const allowed = nth <= 2 ? [APP_DATA, CCS] : [APP_DATA];
      const bad = types.filter((t) => !allowed.includes(t));
      if (bad.length) problem(`record type(s) ${bad.join(',')} where application data (23) belongs${bad.includes(HANDSHAKE) ? ' (a handshake record)' : ''}`);
    }
  }
  report.streams = [...streams.values()].map(({ seen: _seen, ...v }) => v);
  return report;
}

export interface NdpiFlow { client: string; server: string; serverPort: number; proto: string; sni: string | undefined; line: string }

/** ndpiReader over the capture: every TCP flow to one of `ports`, with its detected protocol and the SNI nDPI read. */
export async function ndpiFlows(file: string, ports: number[]): Promise<NdpiFlow[]> {
  const r = await exec(['ndpiReader', '-i', file, '-v', '2'], { timeoutMs: 60_000 });
  const res: NdpiFlow[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*\d+\s+TCP\s+(\S+):(\d+)\s+<?->\s+(\S+):(\d+)\s+\[proto:\s*([^\]]+)\]/.exec(line);
    if (!m) {
      if (/\bTCP\b.*:\d+\s+<?->/.test(line)) process.stdout.write(`# ndpiReader line not understood: ${line.trim().slice(0, 200)}\n`);
      continue;
    }
    // nDPI prints either end first; the server is the end on one of `ports`.
    const firstIsServer = ports.includes(Number(m[2]));
    if (!firstIsServer && !ports.includes(Number(m[4]))) continue;
    const [client, server, serverPort] = firstIsServer ? [`${m[3]}:${m[4]}`, `${m[1]}:${m[2]}`, Number(m[2])] : [`${m[1]}:${m[2]}`, `${m[3]}:${m[4]}`, Number(m[4])];
    const sni = /\[Hostname\/SNI:\s*([^\]]+)\]/.exec(line)?.[1].trim();
    res.push({ client, server, serverPort, proto: m[5].trim(), sni, line: line.trim().slice(0, 300) });
  }
  return res;
}

/** nDPI's protocol text (e.g. "91/TLS", "91.212/TLS.Microsoft") names TLS. */
export const isTlsProto = (proto: string) => /\/TLS(\.|$)/.test(proto);
