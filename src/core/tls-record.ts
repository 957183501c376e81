// The TLS record layer as rsock's --obfs=tls uses it, and the pieces the ClientHello and ServerHello
// shapes share. Only shapes: nothing here encrypts. The limits are TLS 1.3's (RFC 8446 5.1, 5.2), so a
// record we write is one a TLS 1.3 peer, a censor's parser or Wireshark would accept.

export const RECORD_HEADER = 5;
export const APP_DATA_HEADER = 5;
/** TLSPlaintext.length limit: handshake, alert and CCS records. */
export const MAX_PLAINTEXT = 1 << 14;
/** TLSCiphertext.length limit: application data. */
export const MAX_CIPHERTEXT = (1 << 14) + 256;
/** The shortest TLS 1.3 application-data record: one content-type byte and a 16-byte AEAD tag. */
export const MIN_APP_DATA = 17;

export const enum ContentType {
  ChangeCipherSpec = 20,
  Alert = 21,
  Handshake = 22,
  AppData = 23,
}

/** TLS 1.3's middlebox-compatibility ChangeCipherSpec, sent right after the ServerHello (RFC 8446 D.4). */
export const CCS_RECORD: readonly number[] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01];

export interface RecordHeader {
  type: number;
  length: number;
}

/**
 * Reads the 5-byte record header at buf[off] (len bytes available from off). Null when fewer than 5
 * bytes are there or the header is not one a TLS 1.3 peer sends: unknown type, a version other than
 * 3.3 (3.1..3.3 for handshake, since a ClientHello's record says 3.1), a length over the limit, an
 * application-data record shorter than an AEAD tag, a CCS that is not one byte. The body need not be
 * present: the caller compares length with what it holds. Fills `ref` when given, so the per-frame
 * receive path allocates nothing.
 */
export function readRecordHeader(buf: Buffer, off: number, len: number, ref?: RecordHeader): RecordHeader | null {
  if (!(off >= 0 && len >= RECORD_HEADER && off + RECORD_HEADER <= buf.length)) return null;
  const type = buf[off];
  const minor = buf[off + 2];
  const length = (buf[off + 3] << 8) | buf[off + 4];
  if (buf[off + 1] !== 3) return null;
  switch (type) {
    case ContentType.Handshake:
      if (minor < 1 || minor > 3 || length === 0 || length > MAX_PLAINTEXT) return null;
      break;
    case ContentType.AppData:
      if (minor !== 3 || length < MIN_APP_DATA || length > MAX_CIPHERTEXT) return null;
      break;
    case ContentType.ChangeCipherSpec:
      if (minor !== 3 || length !== 1) return null;
      break;
    case ContentType.Alert:
      if (minor !== 3 || length < 2 || length > MAX_CIPHERTEXT) return null;
      break;
    default:
      return null;
  }
  const out = ref ?? { type: 0, length: 0 };
  out.type = type;
  out.length = length;
  return out;
}

/** Writes `17 03 03 LL LL` at buf[off]; innerLen bytes of record body follow it. */
export function writeAppDataHeader(buf: Buffer, off: number, innerLen: number): void {
  if (!(innerLen >= MIN_APP_DATA && innerLen <= MAX_CIPHERTEXT)) {
    throw new RangeError(`TLS application-data record length ${innerLen} outside ${MIN_APP_DATA}..${MAX_CIPHERTEXT}`);
  }
  if (!(off >= 0 && off + APP_DATA_HEADER <= buf.length)) {
    throw new RangeError(`TLS record header at ${off} does not fit a ${buf.length}-byte buffer`);
  }
  buf[off] = ContentType.AppData;
  buf[off + 1] = 3;
  buf[off + 2] = 3;
  buf[off + 3] = innerLen >> 8;
  buf[off + 4] = innerLen & 0xff;
}

/**
 * Why `name` cannot go into server_name, or null if it can: a DNS host name (RFC 6066 3: no trailing
 * dot, no IP literal), labels of 1..63 letters, digits and inner hyphens, 253 characters at most.
 * A last label of digits only is refused since that is how an IPv4 literal looks.
 */
export function sniError(name: string): string | null {
  if (name.length === 0) return 'empty';
  if (name.length > 253) return `${name.length} characters, at most 253 allowed`;
  const labels = name.split('.');
  for (const l of labels) {
    if (l.length === 0) return 'empty label (leading, trailing or double dot)';
    if (l.length > 63) return `label "${l.slice(0, 16)}…" is ${l.length} characters, at most 63 allowed`;
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/.test(l)) {
      return `label "${l}" must be letters, digits and hyphens, not starting or ending with a hyphen`;
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1])) return 'an IP address or numeric top-level label is not a host name';
  return null;
}

/**
 * GREASE values (RFC 8701) are 0x?A?A with both nibbles equal. A browser picks one per slot per
 * connection; `which` names the slot so one seed gives each slot its own value, and the two GREASE
 * extensions differ, as BoringSSL makes them.
 */
export const enum GreaseSlot {
  Cipher = 0,
  Group = 1,
  Extension1 = 2,
  Version = 3,
  Extension2 = 4,
}

export function greaseValue(seed: number, which: GreaseSlot): number {
  const s = seed & 0xffff;
  const nib = (k: number) => (s >> (4 * k)) & 0xf;
  // Offset 1..15 from Extension1's nibble: never equal to it.
  const n = which === GreaseSlot.Extension2 ? (nib(2) + 1 + ((nib(0) ^ nib(3)) % 15)) & 0xf : nib(which);
  return (n << 12) | (n << 4) | 0x0a0a;
}

export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 12 === ((v >> 4) & 0xf);
}

// Bounds-checked readers for the parsers: hostile input gives -1, never an exception.
export function u8At(buf: Buffer, p: number, end: number): number {
  return p < end ? buf[p] : -1;
}
export function u16At(buf: Buffer, p: number, end: number): number {
  return p + 2 <= end ? (buf[p] << 8) | buf[p + 1] : -1;
}
export function u24At(buf: Buffer, p: number, end: number): number {
  return p + 3 <= end ? (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2] : -1;
}

/** buf[from, from+n) as a Buffer of its own: callers zero and restore the record's bytes in place. */
export function copyOut(buf: Buffer, from: number, n: number): Buffer {
  return Buffer.from(buf.subarray(from, from + n));
}
