// The ClientHello record that opens an rsock connection under --obfs=tls. Its shape is Chrome's
// (BoringSSL, before post-quantum key shares): the same cipher suites, extensions in the same order, GREASE
// in the same five places, and the record padded to 517 bytes, so a censor fingerprinting ClientHellos
// (JA3, extension order, size) sees a browser. The tunnel's own bytes ride in fields that are random in
// a real hello: random, legacy_session_id and the x25519 key share.
import {
  ContentType, GreaseSlot, MAX_PLAINTEXT, RECORD_HEADER, copyOut, greaseValue, sniError, u16At, u24At, u8At,
} from './tls-record';
import { Ext, TLS12, TLS13, X25519, extBodyOk, offersTls13 } from './tls-extensions';

export interface ClientHelloParams {
  sni: string;
  /** 32 bytes each. */
  random: Buffer;
  sessionId: Buffer;
  /** Its last byte's top bit is cleared on the wire (X25519 keys are below 2^255), so 255 bits carry. */
  keyShare: Buffer;
  /** Seeds the GREASE values; a browser picks new ones per connection, so should the caller. */
  grease: number;
  /** Record size to pad to; default CLIENT_HELLO_PAD_TO. See buildClientHello. */
  padTo?: number;
}

export interface ClientHelloInfo {
  random: Buffer;
  sessionId: Buffer;
  keyShare: Buffer;
  sni: string;
  /** Bytes of the whole record, header included; whatever follows in the buffer is not part of it. */
  recordLen: number;
  /** Offsets from the record's first byte: where sessionId and keyShare sit in it. */
  sessionIdOff: number;
  keyShareOff: number;
}

/** BoringSSL pads a ClientHello message of 256..511 bytes to 512 (RFC 7685): a 517-byte record. */
export const CLIENT_HELLO_PAD_TO = 517;
/** Fixed offsets inside the record: record header 5, handshake header 4, legacy_version 2. */
export const CH_RANDOM_OFF = 11;
export const CH_SESSION_ID_OFF = 44;

const SUITES = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];
const GROUPS = [X25519, 0x0017, 0x0018];
const SIG_ALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];

const u16s = (list: number[]) => list.flatMap((v) => [v >> 8, v & 0xff]);
const ext = (type: number, body: number[]) => [...u16s([type, body.length]), ...body];
const ascii = (s: string) => [...Buffer.from(s, 'latin1')];
const alpnList = [2, ...ascii('h2'), 8, ...ascii('http/1.1')];

// Extensions whose bytes never change, grouped as they fall between the per-connection ones.
const AFTER_SNI = Buffer.from([
  ...ext(Ext.ExtendedMasterSecret, []),
  ...ext(Ext.RenegotiationInfo, [0]),
]);
const AFTER_GROUPS = Buffer.from([
  ...ext(Ext.EcPointFormats, [1, 0]),
  ...ext(Ext.SessionTicket, []),
  ...ext(Ext.Alpn, [...u16s([alpnList.length]), ...alpnList]),
  ...ext(Ext.StatusRequest, [1, 0, 0, 0, 0]),
  ...ext(Ext.SignatureAlgorithms, u16s([SIG_ALGS.length * 2, ...SIG_ALGS])),
  ...ext(Ext.SignedCertTimestamp, []),
]);
const AFTER_KEY_SHARE = Buffer.from(ext(Ext.PskKeyExchangeModes, [1, 1]));
// compress_certificate (brotli), then application_settings (ALPS, 0x4469) for h2, as Chrome sends them.
const AFTER_VERSIONS = Buffer.from([...ext(Ext.CompressCertificate, [2, 0, 2]), ...ext(Ext.ApplicationSettings, [0, 3, 2, ...ascii('h2')])]);

// Built here, then copied out once its size is known: padding depends on everything before it.
const scratch = Buffer.alloc(RECORD_HEADER + MAX_PLAINTEXT);

function need32(b: Buffer, what: string): void {
  if (!Buffer.isBuffer(b) || b.length !== 32) throw new RangeError(`ClientHello ${what} must be a 32-byte Buffer`);
}

/**
 * Writes the ClientHello record at out[off] and returns its length. Padding (the last extension, as in
 * BoringSSL) brings the record to padTo bytes; when fewer than 5 bytes are missing it carries one
 * byte (an extension takes 4, and a last extension must not be empty), and a record already at padTo
 * or longer (a long SNI) is not padded. Throws RangeError for a bad SNI or parameter, or when out is short.
 */
export function buildClientHello(out: Buffer, off: number, p: ClientHelloParams): number {
  const bad = sniError(p.sni);
  if (bad !== null) throw new RangeError(`invalid SNI "${p.sni}": ${bad}`);
  need32(p.random, 'random');
  need32(p.sessionId, 'sessionId');
  need32(p.keyShare, 'keyShare');
  const padTo = p.padTo ?? CLIENT_HELLO_PAD_TO;
  if (!Number.isInteger(padTo) || padTo < 0 || padTo > RECORD_HEADER + MAX_PLAINTEXT) {
    throw new RangeError(`ClientHello padTo ${padTo} outside 0..${RECORD_HEADER + MAX_PLAINTEXT}`);
  }
  const grease = (slot: GreaseSlot) => greaseValue(p.grease, slot);
  const b = scratch;
  let q = 0;
  b[q++] = ContentType.Handshake;
  q = b.writeUInt16BE(0x0301, q) + 2; // record length later
  b[q] = 1; // client_hello
  q += 4; // handshake length later
  q = b.writeUInt16BE(TLS12, q);
  q += p.random.copy(b, q);
  b[q++] = 32;
  q += p.sessionId.copy(b, q);
  q = b.writeUInt16BE(2 * (SUITES.length + 1), q);
  q = b.writeUInt16BE(grease(GreaseSlot.Cipher), q);
  for (const s of SUITES) q = b.writeUInt16BE(s, q);
  b[q++] = 1;
  b[q++] = 0;
  const extStart = q + 2;
  q = extStart;

  q = b.writeUInt16BE(grease(GreaseSlot.Extension1), q);
  q = b.writeUInt16BE(0, q);
  const n = p.sni.length;
  q = b.writeUInt16BE(Ext.ServerName, q);
  q = b.writeUInt16BE(n + 5, q);
  q = b.writeUInt16BE(n + 3, q);
  b[q++] = 0; // host_name
  q = b.writeUInt16BE(n, q);
  q += b.write(p.sni, q, 'latin1');
  q += AFTER_SNI.copy(b, q);
  q = b.writeUInt16BE(Ext.SupportedGroups, q);
  q = b.writeUInt16BE(2 + 2 * (GROUPS.length + 1), q);
  q = b.writeUInt16BE(2 * (GROUPS.length + 1), q);
  q = b.writeUInt16BE(grease(GreaseSlot.Group), q);
  for (const g of GROUPS) q = b.writeUInt16BE(g, q);
  q += AFTER_GROUPS.copy(b, q);
  // key_share: a one-byte GREASE share, then x25519.
  q = b.writeUInt16BE(Ext.KeyShare, q);
  q = b.writeUInt16BE(2 + 5 + 36, q);
  q = b.writeUInt16BE(5 + 36, q);
  q = b.writeUInt16BE(grease(GreaseSlot.Group), q);
  q = b.writeUInt16BE(1, q);
  b[q++] = 0;
  q = b.writeUInt16BE(X25519, q);
  q = b.writeUInt16BE(32, q);
  q += p.keyShare.copy(b, q);
  b[q - 1] &= 0x7f;
  q += AFTER_KEY_SHARE.copy(b, q);
  q = b.writeUInt16BE(Ext.SupportedVersions, q);
  q = b.writeUInt16BE(7, q);
  b[q++] = 6;
  q = b.writeUInt16BE(grease(GreaseSlot.Version), q);
  q = b.writeUInt16BE(TLS13, q);
  q = b.writeUInt16BE(TLS12, q);
  q += AFTER_VERSIONS.copy(b, q);
  q = b.writeUInt16BE(grease(GreaseSlot.Extension2), q);
  q = b.writeUInt16BE(1, q);
  b[q++] = 0;

  const gap = padTo - q;
  if (gap > 0) {
    const padLen = gap >= 5 ? gap - 4 : 1;
    q = b.writeUInt16BE(Ext.Padding, q);
    q = b.writeUInt16BE(padLen, q);
    b.fill(0, q, q + padLen);
    q += padLen;
  }
  b.writeUInt16BE(q - extStart, extStart - 2);
  b.writeUInt16BE(q - RECORD_HEADER, 3);
  b.writeUIntBE(q - RECORD_HEADER - 4, 6, 3);
  if (!(off >= 0 && off + q <= out.length)) {
    throw new RangeError(`ClientHello of ${q} bytes does not fit at ${off} in a ${out.length}-byte buffer`);
  }
  b.copy(out, off, 0, q);
  return q;
}

/**
 * Reads a ClientHello record at buf[off, off+len): ours, or a real browser's. Null for anything that is
 * not one whole, well-formed TLS 1.3 ClientHello in a single record with a 32-byte legacy_session_id,
 * one host_name, and an x25519 key share; never throws on hostile bytes. Known extensions must be
 * well formed, unknown ones are skipped, none may repeat. The returned Buffers are copies.
 */
export function parseClientHello(buf: Buffer, off: number, len: number): ClientHelloInfo | null {
  if (!(off >= 0 && len >= RECORD_HEADER && off + len <= buf.length)) return null;
  if (buf[off] !== ContentType.Handshake || buf[off + 1] !== 3 || buf[off + 2] < 1 || buf[off + 2] > 3) return null;
  const rlen = (buf[off + 3] << 8) | buf[off + 4];
  if (rlen < 4 || rlen > MAX_PLAINTEXT || RECORD_HEADER + rlen > len) return null;
  const end = off + RECORD_HEADER + rlen;
  let p = off + RECORD_HEADER;
  if (buf[p] !== 1 || u24At(buf, p + 1, end) !== rlen - 4) return null;
  p += 4;
  if (u16At(buf, p, end) !== TLS12 || u8At(buf, p + 34, end) !== 32) return null;
  const randomAt = p + 2;
  const sidAt = p + 35;
  p = sidAt + 32;
  const suites = u16At(buf, p, end);
  if (suites < 2 || suites % 2 !== 0) return null;
  p += 2 + suites;
  // TLS 1.3 allows exactly one compression method, null.
  if (u8At(buf, p, end) !== 1 || u8At(buf, p + 1, end) !== 0) return null;
  p += 2;
  if (u16At(buf, p, end) !== end - p - 2) return null;
  p += 2;

  let sni: string | null = null;
  let keyAt = -1;
  let tls13 = false;
  const seen = new Set<number>();
  while (p < end) {
    const type = u16At(buf, p, end);
    const elen = u16At(buf, p + 2, end);
    if (type < 0 || elen < 0 || p + 4 + elen > end || seen.has(type)) return null;
    seen.add(type);
    const body = p + 4;
    const bodyEnd = body + elen;
    if (!extBodyOk(type, buf, body, bodyEnd)) return null;
    if (type === Ext.ServerName) {
      sni = hostName(buf, body, bodyEnd);
      if (sni === null) return null;
    } else if (type === Ext.KeyShare) {
      keyAt = x25519Share(buf, body, bodyEnd);
      if (keyAt < 0) return null;
    } else if (type === Ext.SupportedVersions) {
      tls13 = offersTls13(buf, body, bodyEnd);
    }
    p = bodyEnd;
  }
  if (sni === null || keyAt < 0 || !tls13) return null;
  return {
    random: copyOut(buf, randomAt, 32),
    sessionId: copyOut(buf, sidAt, 32),
    keyShare: copyOut(buf, keyAt, 32),
    sni,
    recordLen: RECORD_HEADER + rlen,
    sessionIdOff: sidAt - off,
    keyShareOff: keyAt - off,
  };
}

/** The one host_name in a server_name body, or null: a list filling the body, no other name types. */
function hostName(buf: Buffer, p: number, end: number): string | null {
  if (u16At(buf, p, end) !== end - p - 2) return null;
  let name: string | null = null;
  for (p += 2; p < end; ) {
    const type = buf[p];
    const n = u16At(buf, p + 1, end);
    if (n < 0 || p + 3 + n > end || type !== 0 || name !== null) return null;
    name = buf.toString('latin1', p + 3, p + 3 + n);
    p += 3 + n;
  }
  return name !== null && sniError(name) === null ? name : null;
}

/** Where the 32-byte x25519 key starts in a ClientHello key_share body, or -1. Other groups are skipped. */
function x25519Share(buf: Buffer, p: number, end: number): number {
  if (u16At(buf, p, end) !== end - p - 2) return -1;
  let at = -1;
  for (p += 2; p < end; ) {
    const group = u16At(buf, p, end);
    const n = u16At(buf, p + 2, end);
    if (group < 0 || n < 1 || p + 4 + n > end) return -1;
    if (group === X25519) {
      if (n !== 32 || at >= 0) return -1;
      at = p + 4;
    }
    p += 4 + n;
  }
  return at;
}
