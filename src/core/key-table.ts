// The key table handed to Crypto.seal()/open(): every connection direction's keys in one Buffer of
// KEY_SLOT.BYTES-byte slots, so a batch mixing frames of many connections crosses into the addon as one
// argument, each record naming its slot by index.
import { KEY_BYTES, KEY_SLOT } from './crypto';

export class KeyTable {
  private table: Buffer;
  private readonly inUse: boolean[] = [];
  /** Slots freed and not reused yet; the last freed is reused first. */
  private readonly freeSlots: number[] = [];
  private live = 0;

  constructor(initialSlots = 8) {
    if (!Number.isInteger(initialSlots) || initialSlots < 1) {
      throw new RangeError(`KeyTable: initialSlots must be a positive integer (got ${initialSlots})`);
    }
    this.table = Buffer.alloc(initialSlots * KEY_SLOT.BYTES);
  }

  /**
   * The table to pass to seal() and open(). allocate() may replace it by a larger one (with every
   * slot's bytes carried over), so read it for each batch rather than keeping it.
   */
  get buffer(): Buffer {
    return this.table;
  }

  /** Slots the current buffer holds. */
  get capacity(): number {
    return this.table.length / KEY_SLOT.BYTES;
  }

  /** Slots allocated and not freed. */
  get size(): number {
    return this.live;
  }

  /** A slot for one set of keys, all zero until write(). Doubles the buffer when every slot is taken. */
  allocate(): number {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.inUse.length;
      if (slot === this.capacity) {
        // Doubling keeps the copies to O(1) per allocation over the table's life.
        const bigger = Buffer.alloc(this.table.length * 2);
        this.table.copy(bigger);
        this.table = bigger;
      }
    }
    this.inUse[slot] = true;
    this.live++;
    return slot;
  }

  /**
   * Gives a slot back. Its bytes are zeroed at once, so a closed connection's keys do not stay in
   * memory for as long as the slot is not reused.
   */
  free(slot: number): void {
    this.check(slot, 'free');
    this.slotBytes(slot).fill(0);
    this.inUse[slot] = false;
    this.freeSlots.push(slot);
    this.live--;
  }

  /** Stores a slot's three keys (MASK 32 bytes, MAC 16, AEAD 32; see KEY_SLOT). */
  write(slot: number, mask: Uint8Array, mac: Uint8Array, aead: Uint8Array): void {
    this.check(slot, 'write');
    const keys = { mask, mac, aead };
    const want = { mask: KEY_BYTES.MASK, mac: KEY_BYTES.MAC, aead: KEY_BYTES.AEAD };
    for (const name of ['mask', 'mac', 'aead'] as const) {
      if (keys[name].length !== want[name]) {
        throw new RangeError(`KeyTable.write: ${name} key must be ${want[name]} bytes (got ${keys[name].length})`);
      }
    }
    const s = this.slotBytes(slot);
    s.set(mask, KEY_SLOT.MASK);
    s.set(mac, KEY_SLOT.MAC);
    s.set(aead, KEY_SLOT.AEAD);
  }

  private slotBytes(slot: number): Buffer {
    return this.table.subarray(slot * KEY_SLOT.BYTES, (slot + 1) * KEY_SLOT.BYTES);
  }

  // A slot that is not allocated is a caller's bug (double free, keys for a closed connection):
  // failing loudly beats sealing frames under another connection's keys.
  private check(slot: number, what: string): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.inUse.length || !this.inUse[slot]) {
      throw new RangeError(`KeyTable.${what}: slot ${slot} is not allocated`);
    }
  }
}
