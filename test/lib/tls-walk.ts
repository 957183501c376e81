// The tests' own reading of a hello record, independent of src/core's parsers: where each extension
// sits and which bytes are length fields. It trusts its input (a record the builder just made or a
// captured one), so it can be short; the parsers under test are the ones that must distrust.

export interface ExtAt {
  type: number;
  /** Offset of the extension's type field in the record. */
  at: number;
  /** Offset and length of its body. */
  body: number;
  len: number;
}

/** Offset of the extensions-length field of a ClientHello (hello = 1) or ServerHello (2) record. */
function extensionsStart(rec: Buffer): number {
  let p = 5 + 4 + 2 + 32;
  p += 1 + rec[p]; // session id
  if (rec[5] === 1) {
    p += 2 + rec.readUInt16BE(p); // cipher suites
    p += 1 + rec[p]; // compression methods
  } else {
    p += 3; // cipher suite, compression method
  }
  return p;
}

export function extensions(rec: Buffer): ExtAt[] {
  const out: ExtAt[] = [];
  let p = extensionsStart(rec);
  const end = p + 2 + rec.readUInt16BE(p);
  for (p += 2; p < end; ) {
    const len = rec.readUInt16BE(p + 2);
    out.push({ type: rec.readUInt16BE(p), at: p, body: p + 4, len });
    p += 4 + len;
  }
  return out;
}

// Length fields inside the bodies of extensions the ClientHello parser knows, as offsets from the body.
const INNER: Record<number, (rec: Buffer, body: number) => number[]> = {
  0: () => [0, 1, 3, 4], // server_name: list length, name length
  5: () => [1, 2, 3, 4], // status_request: responder ids, extensions
  10: () => [0, 1],
  11: () => [0],
  13: () => [0, 1],
  16: (rec, body) => [0, 1, ...names(rec, body)],
  0x4469: (rec, body) => [0, 1, ...names(rec, body)],
  27: () => [0],
  43: () => [0],
  45: () => [0],
  // key_share: list length, then each entry's key length
  51: (rec, body) => {
    const out = [0, 1];
    for (let q = 2; q < 2 + rec.readUInt16BE(body); q += 4 + rec.readUInt16BE(body + q + 2)) out.push(q + 2, q + 3);
    return out;
  },
  0xff01: () => [0],
};

/** Offsets of the u8 lengths of the protocol names in an ALPN-shaped body. */
function names(rec: Buffer, body: number): number[] {
  const out: number[] = [];
  for (let q = 2; q < 2 + rec.readUInt16BE(body); q += 1 + rec[body + q]) out.push(q);
  return out;
}

/**
 * Every byte of `rec` (a ClientHello or a ServerHello+CCS) that belongs to a length field: record,
 * handshake, session id, suites, compression, extensions, each extension, and the structure inside the
 * ones the parser reads or checks. A ServerHello's key_share length and the CCS record's length count.
 */
export function lengthFieldOffsets(rec: Buffer): number[] {
  const out = [3, 4, 6, 7, 8, 43];
  const hello = rec[5];
  if (hello === 1) {
    const suites = 44 + 32;
    out.push(suites, suites + 1, suites + 2 + rec.readUInt16BE(suites));
  }
  const e = extensionsStart(rec);
  out.push(e, e + 1);
  for (const x of extensions(rec)) {
    out.push(x.at + 2, x.at + 3);
    if (hello === 1) out.push(...(INNER[x.type]?.(rec, x.body) ?? []).map((o) => x.body + o));
    else if (x.type === 51) out.push(x.body + 2, x.body + 3);
  }
  if (hello === 2) {
    const ccs = 5 + rec.readUInt16BE(3);
    out.push(ccs + 3, ccs + 4);
  }
  return out;
}

const hex = (s: string) => Buffer.from(s, 'hex');

/**
 * Real ClientHellos, captured on loopback with `tcpdump -i lo -w cap.pcap 'tcp port 14433'` against
 * `openssl s_server -accept 14433 -www` (OpenSSL 3.0.19, Debian 12) and extracted with
 * `tshark -r cap.pcap -Y tls.handshake.type==1 -T fields -e tcp.payload`.
 * CURL_HELLO: `curl -sk --resolve www.example.org:14433:127.0.0.1 https://www.example.org:14433/`
 * (curl 7.88.1, OpenSSL 3.0.19): 517 bytes, its padding extension's 174 zero bytes appended below.
 */
export const CURL_HELLO = hex(
  '1603010200010001fc03032f27e1760d671ff48b0038f3320e98daedc28645c796cc407fb0e199ff4f1966209747d7e76899cc133bbb37454ceb31e4' +
  '1135e23b13eefcf7cbe57f1d6bff5f5c003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039' +
  'c009c0130033009d009c003d003c0035002f00ff0100017500000014001200000f7777772e6578616d706c652e6f7267000b000403000102000a0016' +
  '0014001d0017001e00190018010001010102010301040010000e000c02683208687474702f312e31001600000017000000310000000d002a00280403' +
  '05030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300' +
  '260024001d0020481522be9ebdae2f62563d726749d2e0b9fbb21210d0ca1db743c73f1a9f2a6f001500ae' +
  '00'.repeat(174),
);

/** `openssl s_client -connect 127.0.0.1:14433 -servername example.org` (OpenSSL 3.0.19): 317 bytes, no ALPN. */
export const S_CLIENT_HELLO = hex(
  '16030101380100013403037f43d411317d9ddf93663c3db9f1baa76e32e2f35f544a1ccff0ee1b3f83de7020c7c8394e684323154b02e8888248c928' +
  'e59ee4d30d476ed00ec3817042e3522e003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039' +
  'c009c0130033009d009c003d003c0035002f00ff010000ad00000010000e00000b6578616d706c652e6f7267000b000403000102000a00160014001d' +
  '0017001e0019001801000101010201030104002300000016000000170000000d002a0028040305030603080708080809080a080b0804080508060401' +
  '05010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d002039650b7a8d45fe4474b26556f7c2c9' +
  '00b83b10ea67fa794d0c85bdcbbe024561',
);
