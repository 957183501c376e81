// Would a censor see a normal TLS 1.3 connection? A connection opened with src/core's ClientHello and
// ServerHello+CCS and carrying application-data records, written as a pcap file, is read by tshark
// (Wireshark's dissectors) and ndpiReader (nDPI, the DPI library many middleboxes embed). Both must
// call it TLS to the given SNI with nothing malformed and no risk beyond a non-443 port. The checks
// are shown to fail on spoiled flows, so a pass means something.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import { TCP_AT } from '../lib/pcap-writer';
import { FlowSpec, ndpiVerdict, pcapDir, tsharkVerdict, writeTlsFlow } from '../lib/tls-observe';
import { exec } from '../lib/proc';

const dir = pcapDir();
let failed = false;
after(() => {
  if (!failed) fs.rmSync(dir, { recursive: true, force: true });
  else console.log(`tls-observers: pcap files kept in ${dir}`);
});

async function verdicts(name: string, spec: FlowSpec) {
  const flow = writeTlsFlow(dir, name, spec);
  const shark = await tsharkVerdict(flow.file, spec.sni, spec.port, flow.appRecords);
  const ndpi = await ndpiVerdict(flow.file, spec.sni, spec.port);
  return { flow, shark, ndpi };
}

test('tshark and ndpiReader are installed (scripts/setup.sh installs them)', async () => {
  for (const cmd of [['tshark', '--version'], ['ndpiReader', '-h']]) {
    const r = await exec(cmd, { allowFail: true }).catch((e: Error) => ({ code: -1, stdout: e.message, stderr: '' }));
    assert.ok(r.code !== -1, `${cmd[0]} is missing: run scripts/setup.sh (${r.stdout})`);
  }
});

const CASES: [string, number][] = [
  ['www.microsoft.com', 443],
  ['example.org', 10001],
  ['img2-eu-west-1.static-assets.cloudfront-delivery.example.com', 443], // 60 characters
];

for (const [sni, port] of CASES) {
  test(`observers see TLS 1.3 to ${sni} on port ${port}`, { timeout: 120_000 }, async () => {
    try {
      const { shark, ndpi } = await verdicts(`${sni}-${port}`, { sni, port });
      console.log(`ndpiReader: ${ndpi.output}`);
      assert.deepEqual(shark.problems, [], `tshark on ${sni}:${port}:\n${shark.output}`);
      assert.deepEqual(ndpi.problems, [], `ndpiReader on ${sni}:${port}:\n${ndpi.output}`);
      // Chrome's JA3 (GREASE left out, as JA3 does), for both observers.
      assert.match(shark.output, /\tcd08e31494f9531f560d64c695473da9\t/);
      assert.match(ndpi.output, /\[JA3C: cd08e31494f9531f560d64c695473da9\]\[JA3S: [0-9a-f]{32}\]\[Chrome\]/);
      if (port !== 443) assert.match(ndpi.output, /Known Protocol on Non Standard Port/);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

// The checks themselves, on flows that are wrong in ways a real observer notices.
// [what is wrong, the flow, what tshark's check must say, what nDPI's must say (null: nDPI checks no checksums)]
const SELF: [string, FlowSpec, RegExp, RegExp | null][] = [
  [
    'a ClientHello record one byte longer than its bytes',
    { sni: 'example.org', port: 443, spoilHello: (ch) => ch.writeUInt16BE(ch.readUInt16BE(3) + 1, 3) },
    /malformed|expert|handshake types|application-data records/,
    /./,
  ],
  [
    'a handshake length that disagrees with the record',
    { sni: 'example.org', port: 443, spoilHello: (ch) => ch.writeUIntBE(ch.readUIntBE(6, 3) - 1, 6, 3) },
    /malformed|expert/,
    /./,
  ],
  [
    'a ClientHello without server_name (its type renamed to an unassigned number)',
    {
      sni: 'example.org',
      port: 443,
      spoilHello: (ch) => {
        assert.equal(ch.readUInt16BE(118), 0, 'server_name is the second extension, its type at byte 118');
        ch.writeUInt16BE(0xfe77, 118);
      },
    },
    /SNI \[\], want example\.org/,
    /Hostname\/SNI null, want example\.org/,
  ],
  [
    'a wrong TCP checksum on the ClientHello segment',
    { sni: 'example.org', port: 443, spoilFrames: (w) => { w.frames[3].data[TCP_AT + 16] ^= 0x40; } },
    /expert (error|warning): Bad checksum/,
    null,
  ],
];

for (const [what, spec, sharkSays, ndpiSays] of SELF) {
  test(`self-check: the observer checks object to ${what}`, { timeout: 120_000 }, async () => {
    const name = `spoiled-${SELF.findIndex((s) => s[0] === what)}`;
    try {
      const { shark, ndpi } = await verdicts(name, spec);
      assert.notDeepEqual(shark.problems, [], `tshark check passed a spoiled flow:\n${shark.output}`);
      assert.match(shark.problems.join('\n'), sharkSays);
      if (ndpiSays) {
        assert.notDeepEqual(ndpi.problems, [], `ndpiReader check passed a spoiled flow: ${ndpi.output}`);
        assert.match(ndpi.problems.join('\n'), ndpiSays);
      }
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}
