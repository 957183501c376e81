// What the core needs from cryptography: frames sealed and opened in batches, BLAKE2b and random
// bytes. The addon implements it with libsodium (native/crypto.cc); the in-memory tests with
// libsodium's WebAssembly build (test/sim/crypto.ts). Both must give the same bytes.
//
// A frame as sealed, at data[OFFSET..]:   hdr(7) | payload(LENGTH) | tag(8 or 16)
//
// Every byte of the header is masked so that no field (length, type, flow id) is a fixed pattern on
// the wire, and the header must be readable before the frame's end is known: so the mask is a stream
// cipher block (XOR, position-independent) rather than part of the authenticated encryption. The
// mask block is ChaCha20-IETF keyed with the slot's MASK key, nonce12 = u64le(nonce) || 00000000,
// block counter 1:
//   plain (aead=false): tag = SipHash-2-4(MAC, hdr | payload); then bytes [0, min(64, 7+LENGTH)) of
//     the frame are XORed with the mask block: the header and the payload's first 57 bytes, so the
//     start of every segment looks random whatever the app sends. The tag is never masked (it is
//     already a pseudo-random function's output).
//   aead=true: payload encrypted in place with ChaCha20-Poly1305-IETF (AEAD key, same nonce12,
//     associated data = the plaintext header), 16-byte tag after it; then only the header is masked.
// The nonce is the frame's 64-bit stream offset: unique per key and direction, so the mask block and
// the AEAD keystream are never reused. Counter 1, not 0: ChaCha20-Poly1305-IETF encrypts from block 1,
// so the mask block is the ciphertext of 64 zero bytes under the AEAD construction, which lets builds
// without the bare stream cipher (libsodium-wrappers) compute it.

export interface Crypto {
  /**
   * Seals `count` frames in place, described by `meta` (CRYPTO_STRIDE words each, see CRYPTO), with
   * keys from the key table `keys` (whole KEY_SLOT.BYTES slots). Each frame's header and payload hold
   * plaintext on entry and its tag space (TAG_PLAIN or TAG_AEAD bytes after the payload) anything.
   * Throws (RangeError, TypeError) before touching any byte when an argument or any record is bad:
   * slot outside the table, frame or tag outside data, count beyond meta, data sharing memory with
   * keys or meta.
   */
  seal(keys: Buffer, data: Buffer, meta: Uint32Array, count: number, aead: boolean): void;
  /**
   * Unmasks the 7 header bytes of `count` received frames in place (LENGTH is ignored: the length is
   * what the header tells), so the caller can read len/type/arg before it knows where a frame ends.
   * Nothing is authenticated yet: the fields are untrusted until open() says ok.
   */
  unmaskHeaders(keys: Buffer, data: Buffer, meta: Uint32Array, count: number): void;
  /**
   * Opens `count` frames whose headers unmaskHeaders() already unmasked: unmasks the payload prefix
   * (plain) or decrypts the payload (aead) in place, and checks the tag in constant time; ok[i] = 1
   * for a valid frame, 0 otherwise. A frame with ok 0 must be dropped: its payload is zeroed (aead:
   * libsodium's rule, no unauthenticated plaintext) or has its first bytes unmasked (plain). Throws before
   * touching anything like seal(), and when ok is shorter than count or shares memory with the rest.
   */
  open(keys: Buffer, data: Buffer, meta: Uint32Array, count: number, aead: boolean, ok: Uint8Array): void;
  /** BLAKE2b of msg, outLen 16..64 bytes, keyed with 16..64 bytes or unkeyed (null). */
  hash(key: Buffer | null, msg: Buffer, outLen: number): Buffer;
  /** n bytes (0 .. 1 MiB) from a CSPRNG. */
  randomBytes(n: number): Buffer;
  /** A uniformly random unsigned 32-bit number from a CSPRNG. */
  randomU32(): number;
}

/** Stride (in u32 words) of one frame's record in seal(), open() and unmaskHeaders(). */
export const CRYPTO_STRIDE = 5;
/** Word offsets inside one record. */
export const CRYPTO = {
  /** Index of the frame's key slot in the key table. */
  KEY: 0,
  /** Byte offset of the frame's header in data; the frame is FRAME_HEADER + LENGTH + tag bytes from there. */
  OFFSET: 1,
  /** Payload length in bytes (header and tag not counted). */
  LENGTH: 2,
  /** The frame's 64-bit nonce (its stream offset) as two u32 halves: nonce = NONCE_HI * 2^32 + NONCE_LO. */
  NONCE_LO: 3, NONCE_HI: 4,
} as const;

/**
 * Byte layout of one key-table slot: the three keys of one direction of one connection. Separate keys
 * for mask, MAC and AEAD, so that one nonce can serve all three without reusing a keystream.
 */
export const KEY_SLOT = {
  BYTES: 80,
  /** 32-byte ChaCha20 key of the mask block. */
  MASK: 0,
  /** 16-byte SipHash-2-4 key of plain frames' tags. */
  MAC: 32,
  /** 32-byte ChaCha20-Poly1305-IETF key of aead frames. */
  AEAD: 48,
} as const;

/** Bytes of a frame's header (len u16 | type u8 | arg u32, big-endian), always masked. */
export const FRAME_HEADER = 7;
/** Tag bytes of a plain frame (SipHash-2-4). */
export const TAG_PLAIN = 8;
/** Tag bytes of an aead frame (Poly1305). */
export const TAG_AEAD = 16;
/** Bytes of the mask block: one ChaCha20 block. A plain frame's first MASK_BYTES bytes (tag excluded) are masked. */
export const MASK_BYTES = 64;

/** The key lengths inside a slot, from KEY_SLOT's offsets. */
export const KEY_BYTES = {
  MASK: KEY_SLOT.MAC - KEY_SLOT.MASK,
  MAC: KEY_SLOT.AEAD - KEY_SLOT.MAC,
  AEAD: KEY_SLOT.BYTES - KEY_SLOT.AEAD,
} as const;
