// Micro-benchmark of the addon's frame crypto (`npm run bench:crypto`; needs the built addon, not root):
// ns per record of seal, unmaskHeaders and open in batches of 64 frames of 1200-byte payloads, both
// modes, with the v1 MAC (mac.sign over the same bytes) for comparison. Printed, not asserted: the
// numbers depend on the machine.
import * as os from 'os';
import { loadNative } from '../src/io/native';
import { layFrames } from '../test/native/crypto-frames';

const BATCH = 64;
const PAYLOAD = 1200;
const SLOTS = 16;
const native = loadNative();
const c = native.crypto;

/** Median over `rounds` of the ns per record of `fn` run `iters` times on a batch. */
function nsPerRecord(fn: () => void, iters = 400, rounds = 9): number {
  for (let i = 0; i < iters; i++) fn(); // warm-up
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t0) / (iters * BATCH));
  }
  return samples.sort((a, b) => a - b)[rounds >> 1];
}

function main(): void {
  const keys = Buffer.alloc(SLOTS * 80);
  for (let i = 0; i < keys.length; i++) keys[i] = (i * 131 + 7) & 0xff;
  const rows: Array<[string, number]> = [];
  for (const aead of [false, true]) {
    const mode = aead ? 'aead' : 'plain';
    const { data, meta } = layFrames(Array(BATCH).fill(PAYLOAD), aead, (i) => i % SLOTS, (i) => BigInt(i) * 1300n);
    const work = Buffer.from(data);
    // Sealing rewrites whatever is there, so it can run on the same bytes again and again.
    rows.push([`seal ${mode}`, nsPerRecord(() => c.seal(keys, work, meta, BATCH, aead))]);
    // Opening needs valid frames each time: restore them from a sealed master, and take the copy's cost off.
    const master = Buffer.from(data);
    c.seal(keys, master, meta, BATCH, aead);
    const ok = new Uint8Array(BATCH);
    const copy = nsPerRecord(() => master.copy(work));
    const unmask = nsPerRecord(() => {
      master.copy(work);
      c.unmaskHeaders(keys, work, meta, BATCH);
    }) - copy;
    const both = nsPerRecord(() => {
      master.copy(work);
      c.unmaskHeaders(keys, work, meta, BATCH);
      c.open(keys, work, meta, BATCH, aead, ok);
    }) - copy;
    if (ok.some((v) => v !== 1)) throw new Error(`bench: a ${mode} frame did not open`);
    rows.push([`unmaskHeaders ${mode}`, unmask], [`open ${mode}`, both - unmask], [`unmaskHeaders + open ${mode}`, both]);
  }
  console.log(`crypto micro-benchmark: ${BATCH} records per call, ${PAYLOAD}-byte payloads, ${os.cpus()[0]?.model.trim()}, libsodium ${native.versions().sodium}`);
  for (const [what, ns] of rows) console.log(`  ${what.padEnd(30)} ${ns.toFixed(0).padStart(6)} ns/record`);
}

main();
