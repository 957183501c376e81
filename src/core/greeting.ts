// The first message each end sends on a connection (docs/PROTOCOL.md §3): the client's carries its
// fresh nonce, the server's carries its own and proves it knows the key; the connection's keys come
// from both nonces. Under --obfs=tls they are a TLS 1.3 ClientHello and ServerHello (+ChangeCipherSpec)
// with the nonces and authenticators where a real handshake has random bytes; under --obfs=none they
// are short printable strings, which the fully-encrypted-traffic rule exempts (Wu et al. 2023).
import type { Crypto } from './crypto';
import type { Obfs } from './frame';
import type { HandshakeKeys } from './keys';
import { buildClientHello, buildServerHello, parseClientHello, parseServerHello } from './tls-shape';

export const NONCE_LEN = 32;
const AUTH_LEN = 16;

export interface ClientGreeting {
  bytes: Buffer;
  nonce: Buffer;
}

export type GreetingResult<T> = ({ ok: true } & T) | { ok: false; why: string };

export interface ClientHelloInfo {
  nonce: Buffer;
  /** What the server must echo (the TLS legacy_session_id); empty in none mode. */
  echo: Buffer;
  /** Bytes of the greeting. */
  consumed: number;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const RAW_LEN = NONCE_LEN + AUTH_LEN;
const TEXT_LEN = (RAW_LEN / 3) * 4;

function equal(a: Buffer, aOff: number, b: Buffer, bOff: number, n: number): boolean {
  let d = 0;
  for (let i = 0; i < n; i++) d |= a[aOff + i] ^ b[bOff + i];
  return d === 0;
}

/** "p" + base64(raw) + p padding characters: printable, of a random length, self-delimiting. */
function printable(crypto: Crypto, raw: Buffer): Buffer {
  const r = crypto.randomBytes(64);
  const pad = r[0] & 63;
  let s = B64[pad] + raw.toString('base64');
  for (let i = 1; i <= pad; i++) s += B64[r[i] & 63];
  return Buffer.from(s, 'latin1');
}

function unprintable(buf: Buffer, off: number, len: number): { raw: Buffer; consumed: number } | null {
  if (len < 1 + TEXT_LEN) return null;
  const pad = B64.indexOf(String.fromCharCode(buf[off]));
  if (pad < 0 || 1 + TEXT_LEN + pad > len) return null;
  for (let i = 1; i < 1 + TEXT_LEN + pad; i++) if (B64.indexOf(String.fromCharCode(buf[off + i])) < 0) return null;
  const raw = Buffer.from(buf.toString('latin1', off + 1, off + 1 + TEXT_LEN), 'base64');
  return raw.length === RAW_LEN ? { raw, consumed: 1 + TEXT_LEN + pad } : null;
}

/** A 32-byte value shaped like an X25519 public key: its top bit is clear. */
function keyShare(crypto: Crypto, head?: Buffer): Buffer {
  const k = crypto.randomBytes(32);
  if (head) head.copy(k);
  k[31] &= 0x7f;
  return k;
}

export function clientGreeting(crypto: Crypto, keys: HandshakeKeys, obfs: Obfs, sni: string): ClientGreeting {
  const nonce = crypto.randomBytes(NONCE_LEN);
  if (obfs === 'none') {
    const auth = crypto.hash(keys.clientHello, Buffer.concat([Buffer.from('ch'), nonce]), AUTH_LEN);
    return { bytes: printable(crypto, Buffer.concat([nonce, auth])), nonce };
  }
  const sessionId = crypto.randomBytes(32);
  sessionId.fill(0, 16);
  const out = Buffer.alloc(1024);
  const len = buildClientHello(out, 0, { sni, random: nonce, sessionId, keyShare: keyShare(crypto), grease: crypto.randomU32() & 0xffff });
  const bytes = out.subarray(0, len);
  const info = parseClientHello(bytes, 0, len)!;
  // The authenticator covers the whole record (SNI included), computed with its own place zeroed.
  crypto.hash(keys.clientHello, bytes, AUTH_LEN).copy(bytes, info.sessionIdOff + 16);
  return { bytes: Buffer.from(bytes), nonce };
}

export function checkClientGreeting(crypto: Crypto, keys: HandshakeKeys, obfs: Obfs, buf: Buffer, off: number, len: number): GreetingResult<ClientHelloInfo> {
  if (obfs === 'none') {
    const g = unprintable(buf, off, len);
    if (!g) return { ok: false, why: looksTls(buf, off, len) ? 'a TLS ClientHello, while this end runs --obfs=none' : 'not an rsock greeting' };
    const nonce = g.raw.subarray(0, NONCE_LEN);
    const auth = crypto.hash(keys.clientHello, Buffer.concat([Buffer.from('ch'), nonce]), AUTH_LEN);
    if (!equal(auth, 0, g.raw, NONCE_LEN, AUTH_LEN)) return { ok: false, why: 'an rsock greeting that does not authenticate (another --key or --crypt)' };
    return { ok: true, nonce: Buffer.from(nonce), echo: Buffer.alloc(0), consumed: g.consumed };
  }
  const ch = parseClientHello(buf, off, len);
  if (!ch) return { ok: false, why: unprintable(buf, off, len) ? 'an --obfs=none greeting, while this end runs --obfs=tls' : 'not a TLS ClientHello' };
  const rec = Buffer.from(buf.subarray(off, off + ch.recordLen));
  const at = ch.sessionIdOff + 16;
  const got = Buffer.from(rec.subarray(at, at + AUTH_LEN));
  rec.fill(0, at, at + AUTH_LEN);
  const auth = crypto.hash(keys.clientHello, rec, AUTH_LEN);
  if (!equal(auth, 0, got, 0, AUTH_LEN)) return { ok: false, why: 'a TLS ClientHello that does not authenticate (a TLS client, or another --key or --crypt)' };
  return { ok: true, nonce: Buffer.from(ch.random), echo: Buffer.from(ch.sessionId), consumed: ch.recordLen };
}

export function serverGreeting(crypto: Crypto, keys: HandshakeKeys, obfs: Obfs, client: Pick<ClientHelloInfo, 'nonce' | 'echo'>): ClientGreeting {
  const nonce = crypto.randomBytes(NONCE_LEN);
  if (obfs === 'none') {
    const auth = crypto.hash(keys.serverHello, Buffer.concat([client.nonce, nonce]), AUTH_LEN);
    return { bytes: printable(crypto, Buffer.concat([nonce, auth])), nonce };
  }
  const out = Buffer.alloc(512);
  const len = buildServerHello(out, 0, { random: nonce, sessionIdEcho: client.echo, keyShare: keyShare(crypto, Buffer.alloc(AUTH_LEN)) });
  const bytes = Buffer.from(out.subarray(0, len));
  const info = parseServerHello(bytes, 0, len)!;
  crypto.hash(keys.serverHello, Buffer.concat([client.nonce, bytes]), AUTH_LEN).copy(bytes, info.keyShareOff);
  return { bytes, nonce };
}

export interface ServerHelloInfo {
  nonce: Buffer;
  /** Bytes of the greeting; frames may follow it in the same segment. */
  consumed: number;
}

export function checkServerGreeting(crypto: Crypto, keys: HandshakeKeys, obfs: Obfs, clientNonce: Buffer, buf: Buffer, off: number, len: number): GreetingResult<ServerHelloInfo> {
  if (obfs === 'none') {
    const g = unprintable(buf, off, len);
    if (!g) return { ok: false, why: looksTls(buf, off, len) ? 'a TLS answer, while this end runs --obfs=none' : 'not an rsock answer' };
    const nonce = g.raw.subarray(0, NONCE_LEN);
    const auth = crypto.hash(keys.serverHello, Buffer.concat([clientNonce, nonce]), AUTH_LEN);
    if (!equal(auth, 0, g.raw, NONCE_LEN, AUTH_LEN)) return { ok: false, why: 'an rsock answer that does not authenticate' };
    return { ok: true, nonce: Buffer.from(nonce), consumed: g.consumed };
  }
  const sh = parseServerHello(buf, off, len);
  if (!sh) return { ok: false, why: unprintable(buf, off, len) ? 'an --obfs=none answer, while this end runs --obfs=tls' : 'not a TLS ServerHello' };
  const rec = Buffer.from(buf.subarray(off, off + sh.consumed));
  const got = Buffer.from(rec.subarray(sh.keyShareOff, sh.keyShareOff + AUTH_LEN));
  rec.fill(0, sh.keyShareOff, sh.keyShareOff + AUTH_LEN);
  const auth = crypto.hash(keys.serverHello, Buffer.concat([clientNonce, rec]), AUTH_LEN);
  if (!equal(auth, 0, got, 0, AUTH_LEN)) return { ok: false, why: 'a TLS ServerHello that does not authenticate' };
  return { ok: true, nonce: Buffer.from(sh.random), consumed: sh.consumed };
}

function looksTls(buf: Buffer, off: number, len: number): boolean {
  return len >= 3 && (buf[off] === 0x16 || buf[off] === 0x17) && buf[off + 1] === 3;
}
