// Hello extension numbers and the structure checks of the ones whose layout RFCs fix. The ClientHello
// parser runs every extension it knows through extBodyOk, so a length field anywhere in a hello we
// accept is consistent: a corrupted one is refused instead of being skipped as opaque.
import { isGrease, u16At, u8At } from './tls-record';

export const enum Ext {
  ServerName = 0,
  StatusRequest = 5,
  SupportedGroups = 10,
  EcPointFormats = 11,
  SignatureAlgorithms = 13,
  Alpn = 16,
  SignedCertTimestamp = 18,
  Padding = 21,
  EncryptThenMac = 22,
  ExtendedMasterSecret = 23,
  CompressCertificate = 27,
  SessionTicket = 35,
  EarlyData = 42,
  SupportedVersions = 43,
  PskKeyExchangeModes = 45,
  PostHandshakeAuth = 49,
  KeyShare = 51,
  /** ALPS, Chrome's application_settings (draft-vvv-tls-alps): the same layout as ALPN. */
  ApplicationSettings = 0x4469,
  RenegotiationInfo = 0xff01,
}

export const X25519 = 0x001d;
export const TLS13 = 0x0304;
export const TLS12 = 0x0303;

/** A vector with a 1- or 2-byte length that fills [p, end) exactly, non-empty, of `unit`-byte items. */
function vectorFills(buf: Buffer, p: number, end: number, lenBytes: 1 | 2, unit: number): boolean {
  const n = lenBytes === 1 ? u8At(buf, p, end) : u16At(buf, p, end);
  return n > 0 && n % unit === 0 && p + lenBytes + n === end;
}

/**
 * ALPN: a u16 list of u8-prefixed protocol names filling the body exactly. RFC 7301 lets names be any
 * bytes, but every registered one is printable ASCII and the only other kind sent is a 2-byte GREASE
 * id; holding names to that turns a corrupted name length into a refusal, not a longer odd name.
 */
function alpnOk(buf: Buffer, p: number, end: number): boolean {
  if (!vectorFills(buf, p, end, 2, 1)) return false;
  for (p += 2; p < end; ) {
    const n = buf[p];
    if (n === 0 || p + 1 + n > end) return false;
    const grease = n === 2 && isGrease((buf[p + 1] << 8) | buf[p + 2]);
    for (let i = p + 1; i <= p + n && !grease; i++) if (buf[i] <= 0x20 || buf[i] >= 0x7f) return false;
    p += 1 + n;
  }
  return true;
}

/** status_request (RFC 6066 8): type, then responder ids and extensions, two u16 vectors. */
function statusRequestOk(buf: Buffer, p: number, end: number): boolean {
  const ids = u16At(buf, p + 1, end);
  if (u8At(buf, p, end) < 0 || ids < 0) return false;
  const q = p + 3 + ids;
  const exts = u16At(buf, q, end);
  return exts >= 0 && q + 2 + exts === end;
}

/** Whether the body buf[p, end) of a ClientHello extension of this type is well formed; unknown types pass. */
export function extBodyOk(type: number, buf: Buffer, p: number, end: number): boolean {
  switch (type) {
    case Ext.SupportedGroups:
    case Ext.SignatureAlgorithms:
      return vectorFills(buf, p, end, 2, 2);
    case Ext.EcPointFormats:
    case Ext.PskKeyExchangeModes:
      return vectorFills(buf, p, end, 1, 1);
    case Ext.RenegotiationInfo: {
      const n = u8At(buf, p, end);
      return n >= 0 && p + 1 + n === end;
    }
    case Ext.SupportedVersions:
    case Ext.CompressCertificate:
      return vectorFills(buf, p, end, 1, 2);
    case Ext.Alpn:
    case Ext.ApplicationSettings:
      return alpnOk(buf, p, end);
    case Ext.StatusRequest:
      return statusRequestOk(buf, p, end);
    // Empty by definition in a ClientHello. A session ticket or early data would need a ticket from an
    // earlier session with this server, and an rsock server never completes a TLS handshake to issue one.
    case Ext.SignedCertTimestamp:
    case Ext.ExtendedMasterSecret:
    case Ext.EncryptThenMac:
    case Ext.PostHandshakeAuth:
    case Ext.SessionTicket:
    case Ext.EarlyData:
      return p === end;
    default:
      // BoringSSL's GREASE extensions hold 0 and 1 bytes; other clients send none.
      return !isGrease(type) || end - p <= 1;
  }
}

/** Whether the u8 list of u16 versions at buf[p, end) (already checked by extBodyOk) offers TLS 1.3. */
export function offersTls13(buf: Buffer, p: number, end: number): boolean {
  for (let q = p + 1; q + 2 <= end; q += 2) if (((buf[q] << 8) | buf[q + 1]) === TLS13) return true;
  return false;
}
