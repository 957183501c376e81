// Record layouts of the addon's batches: the word offsets of every field, named once here and in
// native/records.h (the addon exports its copy as `layouts`; test/native/layouts.test.ts checks they agree).

/** Stride (in u32 words) of one packet's metadata in Injector.send(). */
export const TX_STRIDE = 15;
/** Word offsets inside one TX metadata record. IPs are IPv4 in host byte order (a.b.c.d => a<<24|b<<16|c<<8|d, as unsigned). */
export const TX = {
  SRC_IP: 0, DST_IP: 1, SRC_PORT: 2, DST_PORT: 3, SEQ: 4, ACK: 5,
  /** TCP flags in the low 8 bits (FIN=1 SYN=2 RST=4 PSH=8 ACK=16). */
  FLAGS: 6,
  /** The 16-bit window field as it goes on the wire (already scaled down by the caller). */
  WINDOW: 7,
  /** Byte offset and length of the TCP payload inside the data Buffer. */
  PAYLOAD_OFF: 8, PAYLOAD_LEN: 9,
  /** The timestamp option's TSval and TSecr; used only when OPTIONS has TX_OPT_TIMESTAMP. */
  TS_VAL: 10, TS_ECR: 11,
  /** Bits (TX_OPT_*) naming the TCP options to put on the segment; 0 = none (a 20-byte TCP header). */
  OPTIONS: 12,
  /** The 16-bit IP id. 0 leaves it to the kernel, which keeps 0 for a DF packet from a raw socket. */
  IP_ID: 13,
  /** The IP TTL, 1..255; 0 means 64. DF is always set. */
  TTL: 14,
} as const;
/**
 * OPTIONS bit: NOP, NOP, Timestamp(TS_VAL, TS_ECR) — 12 bytes, TCP data offset 8 words: exactly the
 * options Linux puts on every segment of an established connection that negotiated timestamps.
 */
export const TX_OPT_TIMESTAMP = 1;

/** Stride (in u32 words) of one packet's record in a capture batch's meta. */
export const CAPTURE_STRIDE = 2;
/** Word offsets inside one capture record: where the packet's IPv4 bytes lie in the batch's data Buffer. */
export const CAPTURE = { OFFSET: 0, LENGTH: 1 } as const;

// Likewise the frame crypto's (src/core/crypto.ts): its record and the byte layout of a key slot.
export { CRYPTO, CRYPTO_STRIDE, KEY_SLOT } from '../core/crypto';

/** Stride (in u32 words) of one datagram's record in a UdpMux receive batch. */
export const UDP_RX_STRIDE = 5;
/** Word offsets inside one UdpMux receive record. IPs are IPv4 in host byte order, as in TX. */
export const UDP_RX = {
  /** Id of the socket that received the datagram. */
  SOCKET: 0,
  /** Byte offset and length of the datagram inside the batch's data Buffer. */
  OFFSET: 1, LENGTH: 2,
  SRC_IP: 3, SRC_PORT: 4,
} as const;
/** Stride (in u32 words) of one datagram's record in UdpMux.send(). */
export const UDP_TX_STRIDE = 5;
/** Word offsets inside one UdpMux send record. */
export const UDP_TX = {
  /** Id of the socket to send from. */
  SOCKET: 0,
  /** Byte offset and length of the datagram inside the data Buffer (length at most 65507). */
  OFFSET: 1, LENGTH: 2,
  /** Destination in host byte order; DST_IP 0 sends to the socket's connected peer (DST_PORT ignored). */
  DST_IP: 3, DST_PORT: 4,
} as const;

/** One record layout as the addon exports it: STRIDE and the word offset of every field. */
export type RecordLayout = { readonly STRIDE: number } & { readonly [field: string]: number };
/** The byte layout of a key-table slot as the addon exports it (layouts.KEY_SLOT). */
export type KeySlotLayout = { readonly BYTES: number; readonly MASK: number; readonly MAC: number; readonly AEAD: number };
