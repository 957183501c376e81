// The server's answer under --obfs=tls: a TLS 1.3 ServerHello record, shaped like OpenSSL's
// (supported_versions, then key_share), and the ChangeCipherSpec record TLS 1.3 servers send next for
// middlebox compatibility. After these, a real server's bytes are all application-data records, as ours are.
import { CCS_RECORD, ContentType, MAX_PLAINTEXT, RECORD_HEADER, copyOut, u16At, u24At, u8At } from './tls-record';
import { Ext, TLS12, TLS13, X25519 } from './tls-extensions';

export interface ServerHelloParams {
  /** 32 bytes each. */
  random: Buffer;
  sessionIdEcho: Buffer;
  /** Its last byte's top bit is cleared on the wire, as in every X25519 public key. */
  keyShare: Buffer;
}

export interface ServerHelloInfo {
  random: Buffer;
  sessionIdEcho: Buffer;
  keyShare: Buffer;
  /** Bytes of the ServerHello record and the ChangeCipherSpec record after it. */
  consumed: number;
  /** Offset of the key share from the ServerHello record's first byte. */
  keyShareOff: number;
}

const SERVER_HELLO_RECORD = 127;
/** ServerHello record (127 bytes) and ChangeCipherSpec (6). */
export const SERVER_HELLO_LEN = SERVER_HELLO_RECORD + CCS_RECORD.length;
export const SH_RANDOM_OFF = 11;
export const SH_SESSION_ID_OFF = 44;
export const SH_KEY_SHARE_OFF = 95;

// RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');
const TLS13_SUITES = [0x1301, 0x1302, 0x1303];

function need32(b: Buffer, what: string): void {
  if (!Buffer.isBuffer(b) || b.length !== 32) throw new RangeError(`ServerHello ${what} must be a 32-byte Buffer`);
}

/** Writes the ServerHello and ChangeCipherSpec records at out[off]; returns SERVER_HELLO_LEN. */
export function buildServerHello(out: Buffer, off: number, p: ServerHelloParams): number {
  need32(p.random, 'random');
  need32(p.sessionIdEcho, 'sessionIdEcho');
  need32(p.keyShare, 'keyShare');
  if (p.random.equals(HRR_RANDOM)) throw new RangeError('ServerHello random equals the HelloRetryRequest marker');
  if (!(off >= 0 && off + SERVER_HELLO_LEN <= out.length)) {
    throw new RangeError(`ServerHello of ${SERVER_HELLO_LEN} bytes does not fit at ${off} in a ${out.length}-byte buffer`);
  }
  let q = off;
  out[q++] = ContentType.Handshake;
  q = out.writeUInt16BE(TLS12, q);
  q = out.writeUInt16BE(SERVER_HELLO_RECORD - RECORD_HEADER, q);
  out[q++] = 2; // server_hello
  q = out.writeUIntBE(SERVER_HELLO_RECORD - RECORD_HEADER - 4, q, 3);
  q = out.writeUInt16BE(TLS12, q);
  q += p.random.copy(out, q);
  out[q++] = 32;
  q += p.sessionIdEcho.copy(out, q);
  q = out.writeUInt16BE(0x1301, q);
  out[q++] = 0;
  q = out.writeUInt16BE(6 + 40, q);
  q = out.writeUInt16BE(Ext.SupportedVersions, q);
  q = out.writeUInt16BE(2, q);
  q = out.writeUInt16BE(TLS13, q);
  q = out.writeUInt16BE(Ext.KeyShare, q);
  q = out.writeUInt16BE(36, q);
  q = out.writeUInt16BE(X25519, q);
  q = out.writeUInt16BE(32, q);
  q += p.keyShare.copy(out, q);
  out[q - 1] &= 0x7f;
  for (const v of CCS_RECORD) out[q++] = v;
  return q - off;
}

/**
 * Reads a ServerHello record and the ChangeCipherSpec record after it at buf[off, off+len); bytes after
 * those are left alone. Null for anything but a TLS 1.3 ServerHello (not a HelloRetryRequest) with a
 * 32-byte session id, a TLS 1.3 suite, supported_versions 1.3 and an x25519 share, followed by the
 * CCS; never throws on hostile bytes. Unknown extensions are skipped, none may repeat. Buffers are copies.
 */
export function parseServerHello(buf: Buffer, off: number, len: number): ServerHelloInfo | null {
  if (!(off >= 0 && len >= RECORD_HEADER && off + len <= buf.length)) return null;
  if (buf[off] !== ContentType.Handshake || u16At(buf, off + 1, off + len) !== TLS12) return null;
  const rlen = (buf[off + 3] << 8) | buf[off + 4];
  if (rlen < 4 || rlen > MAX_PLAINTEXT || RECORD_HEADER + rlen + CCS_RECORD.length > len) return null;
  const end = off + RECORD_HEADER + rlen;
  let p = off + RECORD_HEADER;
  if (buf[p] !== 2 || u24At(buf, p + 1, end) !== rlen - 4) return null;
  p += 4;
  if (u16At(buf, p, end) !== TLS12 || u8At(buf, p + 34, end) !== 32) return null;
  const randomAt = p + 2;
  const sidAt = p + 35;
  p = sidAt + 32;
  if (!TLS13_SUITES.includes(u16At(buf, p, end)) || u8At(buf, p + 2, end) !== 0) return null;
  p += 3;
  if (u16At(buf, p, end) !== end - p - 2) return null;
  p += 2;
  if (buf.compare(HRR_RANDOM, 0, 32, randomAt, randomAt + 32) === 0) return null;

  let keyAt = -1;
  let tls13 = false;
  const seen = new Set<number>();
  while (p < end) {
    const type = u16At(buf, p, end);
    const elen = u16At(buf, p + 2, end);
    if (type < 0 || elen < 0 || p + 4 + elen > end || seen.has(type)) return null;
    seen.add(type);
    const body = p + 4;
    if (type === Ext.SupportedVersions) {
      if (elen !== 2 || u16At(buf, body, end) !== TLS13) return null;
      tls13 = true;
    } else if (type === Ext.KeyShare) {
      if (elen !== 36 || u16At(buf, body, end) !== X25519 || u16At(buf, body + 2, end) !== 32) return null;
      keyAt = body + 4;
    }
    p = body + elen;
  }
  if (!tls13 || keyAt < 0) return null;
  for (let i = 0; i < CCS_RECORD.length; i++) if (buf[end + i] !== CCS_RECORD[i]) return null;
  return {
    random: copyOut(buf, randomAt, 32),
    sessionIdEcho: copyOut(buf, sidAt, 32),
    keyShare: copyOut(buf, keyAt, 32),
    consumed: end + CCS_RECORD.length - off,
    keyShareOff: keyAt - off,
  };
}
