// Record layouts of the addon's batches: the word offsets of every field, named once here and in
// native/records.h (the addon exports its copy as `layouts`; test/native/layouts.test.ts checks they agree).

/** Stride (in u32 words) of one packet's metadata in Injector.send(). */
export const TX_STRIDE = 10;
/** Word offsets inside one TX metadata record. IPs are IPv4 in host byte order (a.b.c.d => a<<24|b<<16|c<<8|d, as unsigned). */
export const TX = {
  SRC_IP: 0, DST_IP: 1, SRC_PORT: 2, DST_PORT: 3, SEQ: 4, ACK: 5,
  /** TCP flags in the low 8 bits (FIN=1 SYN=2 RST=4 PSH=8 ACK=16). */
  FLAGS: 6,
  /** The 16-bit window field as it goes on the wire (already scaled down by the caller). */
  WINDOW: 7,
  /** Byte offset and length of the TCP payload inside the data Buffer. */
  PAYLOAD_OFF: 8, PAYLOAD_LEN: 9,
} as const;

/** Stride (in u32 words) of one packet's record in a capture batch's meta. */
export const CAPTURE_STRIDE = 2;
/** Word offsets inside one capture record: where the packet's IPv4 bytes lie in the batch's data Buffer. */
export const CAPTURE = { OFFSET: 0, LENGTH: 1 } as const;

// The MAC's surface and record layout belong to the core (src/core/mac.ts); the addon implements them.
export { MAC, MAC_STRIDE } from '../core/mac';
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
