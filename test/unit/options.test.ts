import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCommand, ClientOptions, ConfigError, Kind, ServerOptions } from '../../src/cli/options';
import { parseFlags } from '../lib/parse-flags';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsock-opts-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const parse = parseFlags;

test('client defaults and both --flag=value and --flag value forms', () => {
  const a = parse('client', ['--taddr=10.0.0.1']) as ClientOptions;
  assert.equal(a.serverHost, '10.0.0.1');
  assert.deepEqual(a.ports, [10001, 10002, 10003, 10004, 10005, 10006, 10007, 10008, 10009, 10010]);
  assert.equal(a.ludpHost, '127.0.0.1');
  assert.equal(a.ludpPort, 30000);
  assert.equal(a.durationSec, 30);
  assert.equal(a.daemon, false);
  assert.equal(a.key, null);
  assert.equal(a.dev, null);
  const b = parse('client', ['-t', '10.0.0.2', '--ports', '80,443', '-l', '0.0.0.0:4000', '--duration', '5', '--hash', 's3', '-d', 'eth1']) as ClientOptions;
  assert.equal(b.serverHost, '10.0.0.2');
  assert.deepEqual(b.ports, [80, 443]);
  assert.equal(b.ludpPort, 4000);
  assert.equal(b.durationSec, 5);
  assert.equal(b.key, 's3', '--hash is the rsock alias of --key');
  assert.equal(b.dev, 'eth1');
});

test('server needs host:port for --taddr', () => {
  const s = parse('server', ['--taddr=127.0.0.1:9999', '--dev=eth0', '--key=k']) as ServerOptions;
  assert.equal(s.targetHost, '127.0.0.1');
  assert.equal(s.targetPort, 9999);
  assert.throws(() => parse('server', ['--taddr=127.0.0.1']), /--taddr: "127.0.0.1" is not host:port/);
  assert.throws(() => parse('server', []), /--taddr: the target host:port is required/);
});

test('bad values give one message naming the flag', () => {
  const cases: [Kind, string[], RegExp][] = [
    ['client', ['-t', '1.2.3.4', '--ports=10-5'], /^--ports: range "10-5" runs backwards/],
    ['client', ['-t', '1.2.3.4', '--duration=abc'], /^--duration: "abc" is not a number/],
    ['client', ['-t', '1.2.3.4', '--duration=0'], /^--duration/],
    ['client', ['-t', '1.2.3.4', '--daemon=yes'], /^--daemon: "yes" must be 0 or 1/],
    ['client', ['-t', '1.2.3.4', '--ludp=nope'], /^--ludp: "nope" is not host:port/],
    ['client', ['-t', '1.2.3.4:10001'], /^--taddr: give the server's address only/],
    ['client', ['-t', '1.2.3.4', '--lcapIp=300.1.1.1'], /^--lcapIp/],
    ['client', ['-t', '1.2.3.4', '--conns=0'], /^--conns/],
    ['client', ['-t', '1.2.3.4', '--key=a', '--hash=b'], /--key and --hash/],
  ];
  for (const [kind, args, re] of cases) {
    assert.throws(() => parse(kind, args), (e: Error) => e instanceof ConfigError && re.test(e.message), args.join(' '));
  }
});

test('-f config merges under the flags and is validated', () => {
  const f = path.join(dir, 'c.json');
  fs.writeFileSync(f, JSON.stringify({ taddr: '10.9.9.9', ports: '20000-20001', duration: 12, key: 'fromfile', ludp: '127.0.0.1:31000' }));
  const o = parse('client', ['-f', f, '--duration=7']) as ClientOptions;
  assert.equal(o.serverHost, '10.9.9.9');
  assert.deepEqual(o.ports, [20000, 20001]);
  assert.equal(o.durationSec, 7, 'the flag wins over the file');
  assert.equal(o.key, 'fromfile');
  assert.equal(o.ludpPort, 31000);

  fs.writeFileSync(f, JSON.stringify({ taddr: '10.9.9.9', bogus: 1 }));
  assert.throws(() => parse('client', ['-f', f]), /unknown key "bogus"/);
  fs.writeFileSync(f, '{not json');
  assert.throws(() => parse('client', ['-f', f]), /not valid JSON/);
  fs.writeFileSync(f, JSON.stringify({ taddr: '10.9.9.9', duration: 'soon' }));
  assert.throws(() => parse('client', ['-f', f]), /--duration: "soon"/);
  assert.throws(() => parse('client', ['-f', path.join(dir, 'missing.json')]), /no such file/);
  fs.writeFileSync(f, JSON.stringify({ taddr: '127.0.0.1:9', ludp: '1.2.3.4:5' }));
  assert.throws(() => parse('server', ['-f', f]), /unknown key "ludp"/, 'client-only keys are refused by the server');
});

test('unknown flags are refused by commander', () => {
  assert.throws(() => parse('client', ['-t', '1.2.3.4', '--bogus=1']), /unknown option/);
});

test('disguise flags: --obfs tls by default, --crypt none, --sni a host name, --decoy host:port; bad values name the flag', () => {
  const c = parse('client', ['--taddr=10.0.0.1']) as ClientOptions;
  assert.deepEqual([c.obfs, c.crypt, c.sni], ['tls', 'none', 'www.microsoft.com']);
  const c2 = parse('client', ['--taddr=10.0.0.1', '--obfs=none', '--crypt=aead', '--sni=cdn.example.org']) as ClientOptions;
  assert.deepEqual([c2.obfs, c2.crypt, c2.sni], ['none', 'aead', 'cdn.example.org']);
  const s = parse('server', ['--taddr=127.0.0.1:9999', '--decoy=127.0.0.1:8080']) as ServerOptions;
  assert.deepEqual(s.decoy, { host: '127.0.0.1', port: 8080 });
  assert.equal((parse('server', ['--taddr=127.0.0.1:9999']) as ServerOptions).decoy, null);
  const bad: Array<[Kind, string[], RegExp]> = [
    ['client', ['--taddr=10.0.0.1', '--obfs=ssl'], /^--obfs: "ssl" must be tls or none/],
    ['server', ['--taddr=127.0.0.1:9999', '--crypt=aes'], /^--crypt: "aes" must be none or aead/],
    ['client', ['--taddr=10.0.0.1', '--sni=10.0.0.1'], /^--sni: "10.0.0.1" is not a host name/],
    ['client', ['--taddr=10.0.0.1', '--sni=bad_name.com'], /^--sni:/],
    ['server', ['--taddr=127.0.0.1:9999', '--decoy=nowhere'], /^--decoy:/],
  ];
  for (const [kind, args, re] of bad) assert.throws(() => parse(kind, args), (e: Error) => e instanceof ConfigError && re.test(e.message), args.join(' '));
  const cfg = path.join(dir, 'disguise.json');
  fs.writeFileSync(cfg, JSON.stringify({ taddr: '127.0.0.1:9999', obfs: 'none', decoy: '127.0.0.1:80' }));
  const f = parse('server', ['-f', cfg]) as ServerOptions;
  assert.deepEqual([f.obfs, f.decoy?.port], ['none', 80]);
  fs.writeFileSync(cfg, JSON.stringify({ taddr: '127.0.0.1:9999', sni: 'x.example' }));
  assert.throws(() => parse('server', ['-f', cfg]), /unknown key "sni"/);
});

test('--type: tcp by default, udp or all by flag or config key "type", anything else a ConfigError naming it', () => {
  assert.equal((parse('client', ['--taddr=10.0.0.1']) as ClientOptions).type, 'tcp');
  assert.equal((parse('client', ['--taddr=10.0.0.1', '--type=all']) as ClientOptions).type, 'all');
  const file = path.join(dir, 'type.json');
  fs.writeFileSync(file, JSON.stringify({ taddr: '127.0.0.1:9999', type: 'udp' }));
  assert.equal((parse('server', ['-f', file]) as ServerOptions).type, 'udp');
  assert.equal((parse('server', ['-f', file, '--type', 'all']) as ServerOptions).type, 'all', 'the flag overrides the file');
  assert.throws(() => parse('client', ['--taddr=10.0.0.1', '--type=icmp']), (e: Error) => e instanceof ConfigError && /^--type: "icmp" must be tcp, udp or all/.test(e.message));
  assert.match(buildCommand('client').helpInformation(), /--type <tcp\|udp\|all>/);
});

test('--busy-poll: 0 (off) by default, whole microseconds up to 10000 by flag or config key "busy-poll"', () => {
  assert.equal((parse('client', ['--taddr=10.0.0.1']) as ClientOptions).busyPollUs, 0);
  assert.equal((parse('client', ['--taddr=10.0.0.1', '--busy-poll=100']) as ClientOptions).busyPollUs, 100);
  const file = path.join(dir, 'busy.json');
  fs.writeFileSync(file, JSON.stringify({ taddr: '127.0.0.1:9999', 'busy-poll': 250 }));
  assert.equal((parse('server', ['-f', file]) as ServerOptions).busyPollUs, 250);
  assert.equal((parse('server', ['-f', file, '--busy-poll', '0']) as ServerOptions).busyPollUs, 0, 'the flag overrides the file');
  for (const bad of ['10001', '-1', '2.5', 'fast']) {
    assert.throws(() => parse('client', ['--taddr=10.0.0.1', `--busy-poll=${bad}`]),
      (e: Error) => e instanceof ConfigError && new RegExp(`^--busy-poll: "${bad}" is not a whole number from 0 to 10000`).test(e.message), bad);
  }
  assert.match(buildCommand('server').helpInformation(), /--busy-poll <us>/);
});
