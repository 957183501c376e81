import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePorts, portFilter, PortListError } from '../../src/core/ports';

test('parses single ports, ranges and mixes, keeping order without duplicates', () => {
  assert.deepEqual(parsePorts('10001-10003'), [10001, 10002, 10003]);
  assert.deepEqual(parsePorts('80,443,10000-10002'), [80, 443, 10000, 10001, 10002]);
  assert.deepEqual(parsePorts(' 443 , 80,443 '), [443, 80]);
  assert.deepEqual(parsePorts('65535'), [65535]);
});

test('rejects bad port lists with a message naming the bad part', () => {
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['abc', /"abc" is not a port/],
    ['80,', /"" is not a port/],
    ['0', /outside 1-65535/],
    ['70000', /outside 1-65535/],
    ['10005-10001', /runs backwards/],
    ['1-2000', /too many/],
    ['10-20-30', /not a port/],
  ];
  for (const [spec, msg] of bad) {
    assert.throws(() => parsePorts(spec), (e: Error) => e instanceof PortListError && msg.test(e.message), spec);
  }
});

test('builds a pcap filter that keeps ranges as ranges', () => {
  assert.equal(portFilter([10001, 10002, 10003], 'dst'), 'dst portrange 10001-10003');
  assert.equal(portFilter([443, 80, 10000, 10001], 'src'), '(src port 80 or src port 443 or src portrange 10000-10001)');
  assert.equal(portFilter([80], 'src'), 'src port 80');
});
