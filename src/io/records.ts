// Record layouts of the addon's batches: the word offsets of every field, named once here and in
// native/records.h (the addon exports its copy as `layouts`; test/native/layouts.test.ts checks they agree).

/** Stride (in u32 words) of one packet's metadata in Injector.send(). */
export const TX_STRIDE = 25;
/**
 * Word offsets inside one TX metadata record. IPv4 addresses in host byte order (a.b.c.d =>
 * a<<24|b<<16|c<<8|d, as unsigned); IPv6 ones as four such words (IP_VERSION 6).
 */
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
  /** The IP TTL (IPv6: hop limit), 1..255; 0 means 64. DF is always set (IPv6 never fragments on the way). */
  TTL: 14,
  /** 6: an IPv6 segment between SRC_IP6 and DST_IP6 (SRC_IP, DST_IP and IP_ID unused); else IPv4. */
  IP_VERSION: 15,
  /** IPv6 addresses, four words each, most significant first (src/core/addr.ts Ip6Words). */
  SRC_IP6: 16, SRC_IP6_1: 17, SRC_IP6_2: 18, SRC_IP6_3: 19,
  DST_IP6: 20, DST_IP6_1: 21, DST_IP6_2: 22, DST_IP6_3: 23,
  /** The IPv6 flow label (20 bits). */
  FLOW_LABEL: 24,
} as const;
/**
 * OPTIONS bit: NOP, NOP, Timestamp(TS_VAL, TS_ECR) — 12 bytes, TCP data offset 8 words: exactly the
 * options Linux puts on every segment of an established connection that negotiated timestamps.
 */
export const TX_OPT_TIMESTAMP = 1;

/** Stride (in u32 words) of one packet's record in a capture batch's meta. */
export const CAPTURE_STRIDE = 2;
/** Word offsets inside one capture record: where the packet's IP bytes (IPv4 or IPv6) lie in the batch's data Buffer. */
export const CAPTURE = { OFFSET: 0, LENGTH: 1 } as const;


/** Stride (in u32 words) of one datagram's record in a UdpMux receive batch. */
export const UDP_RX_STRIDE = 10;
/** Word offsets inside one UdpMux receive record. Addresses as in TX. */
export const UDP_RX = {
  /** Id of the socket that received the datagram. */
  SOCKET: 0,
  /** Byte offset and length of the datagram inside the batch's data Buffer. */
  OFFSET: 1, LENGTH: 2,
  SRC_IP: 3, SRC_PORT: 4,
  /** 6 when the source is IPv6 (then in SRC_IP6, four words, and SRC_IP is 0), else 4. */
  IP_VERSION: 5,
  SRC_IP6: 6, SRC_IP6_1: 7, SRC_IP6_2: 8, SRC_IP6_3: 9,
} as const;
/** Stride (in u32 words) of one datagram's record in UdpMux.send(). */
export const UDP_TX_STRIDE = 10;
/** Word offsets inside one UdpMux send record. */
export const UDP_TX = {
  /** Id of the socket to send from. */
  SOCKET: 0,
  /** Byte offset and length of the datagram inside the data Buffer (length at most 65507). */
  OFFSET: 1, LENGTH: 2,
  /** Destination in host byte order; DST_IP 0 sends to the socket's connected peer (DST_PORT ignored). */
  DST_IP: 3, DST_PORT: 4,
  /** 6: the destination is DST_IP6 (four words) and DST_PORT; else IPv4 as above. */
  IP_VERSION: 5,
  DST_IP6: 6, DST_IP6_1: 7, DST_IP6_2: 8, DST_IP6_3: 9,
} as const;

/** One record layout as the addon exports it: STRIDE and the word offset of every field. */
export type RecordLayout = { readonly STRIDE: number } & { readonly [field: string]: number };
/** The byte layout of a key-table slot as the addon exports it (layouts.KEY_SLOT). */
export type KeySlotLayout = { readonly BYTES: number; readonly MASK: number; readonly MAC: number; readonly AEAD: number };
