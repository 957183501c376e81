// --forward and --allow on the command line and in -f config files: repeatable, lists in the file,
// every bad value one ConfigError naming the flag.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCommand, ClientOptions, ConfigError, Kind, ServerOptions } from '../../src/cli/options';
import { parseFlags } from '../lib/parse-flags';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsock-fwd-opts-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const parse = parseFlags;

function config(name: string, data: object): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, JSON.stringify(data));
  return f;
}

test('--forward is repeatable and sits beside --ludp; none by default', () => {
  assert.deepEqual((parse('client', ['--taddr=10.0.0.1']) as ClientOptions).forwards, []);
  const o = parse('client', ['--taddr=10.0.0.1', '--forward=127.0.0.1:5353=127.0.0.1:53', '--forward', '0.0.0.0:4000=wg.internal:51820']) as ClientOptions;
  assert.equal(o.ludpPort, 30000);
  assert.deepEqual(o.forwards, [
    { localHost: '127.0.0.1', localPort: 5353, target: { host: '127.0.0.1', port: 53 } },
    { localHost: '0.0.0.0', localPort: 4000, target: { host: 'wg.internal', port: 51820 } },
  ]);
});

test('--allow is repeatable on the server', () => {
  assert.deepEqual((parse('server', ['--taddr=127.0.0.1:9999']) as ServerOptions).allow, []);
  const s = parse('server', ['--taddr=127.0.0.1:9999', '--allow=127.0.0.1:53', '--allow', 'dns.internal:5353']) as ServerOptions;
  assert.deepEqual(s.allow, [{ host: '127.0.0.1', port: 53 }, { host: 'dns.internal', port: 5353 }]);
});

test('the config file takes both as lists (or one string); flags replace the file\'s list', () => {
  const c = config('c.json', { taddr: '10.0.0.1', forward: ['127.0.0.1:5353=127.0.0.1:53', '127.0.0.1:5354=127.0.0.1:54'] });
  assert.equal((parse('client', ['-f', c]) as ClientOptions).forwards.length, 2);
  const over = parse('client', ['-f', c, '--forward=127.0.0.1:6000=10.1.1.1:6000']) as ClientOptions;
  assert.deepEqual(over.forwards.map((f) => f.localPort), [6000]);
  const s = config('s.json', { taddr: '127.0.0.1:9999', allow: '127.0.0.1:53' });
  assert.deepEqual((parse('server', ['-f', s]) as ServerOptions).allow, [{ host: '127.0.0.1', port: 53 }]);
  assert.throws(() => parse('server', ['-f', config('bad.json', { taddr: '127.0.0.1:9999', allow: [53] })]), (e: Error) => e instanceof ConfigError && /^--allow: expected a list of strings/.test(e.message));
  assert.throws(() => parse('server', ['-f', config('srv-fwd.json', { taddr: '127.0.0.1:9999', forward: ['a:1=b:2'] })]), /unknown key "forward"/);
});

test('bad forwards and allows: one line naming the flag', () => {
  const bad: [string[], RegExp][] = [
    [['--forward=127.0.0.1:5353'], /^--forward: "127.0.0.1:5353" is not LOCAL_HOST:PORT=TARGET_HOST:PORT$/],
    [['--forward=127.0.0.1:5353=127.0.0.1'], /^--forward: "127.0.0.1:5353=127.0.0.1": "127.0.0.1" is not host:port \(IPv6: \[addr\]:port\)$/],
    [['--forward=127.0.0.1:0=127.0.0.1:53'], /^--forward: .*outside 1-65535/],
    [['--forward=127.0.0.1:30000=127.0.0.1:53'], /^--forward: .*127.0.0.1:30000 is already a local endpoint/],
    [['--forward=127.0.0.1:1=a:1', '--forward=127.0.0.1:1=b:1'], /already a local endpoint/],
    [['--forward=127.0.0.1:1=bad host:53'], /^--forward: "bad host" is not a host name/],
    [Array.from({ length: 32 }, (_, i) => `--forward=127.0.0.1:${2000 + i}=h:53`), /^--forward: 32 given, at most 31$/],
    [Array.from({ length: 20 }, (_, i) => `--forward=127.0.0.1:${2000 + i}=${'x'.repeat(40)}.example:53`), /^--forward: the forward table takes \d+ bytes; at most 400/],
  ];
  for (const [args, re] of bad) {
    assert.throws(() => parse('client', ['--taddr=10.0.0.1', ...args]), (e: Error) => e instanceof ConfigError && re.test(e.message), args.join(' '));
  }
  assert.throws(() => parse('server', ['--taddr=127.0.0.1:9999', '--allow=127.0.0.1']), (e: Error) => e instanceof ConfigError && /^--allow: "127.0.0.1" is not host:port \(IPv6: \[addr\]:port\)$/.test(e.message));
});

test('--help explains forwards with a WireGuard + DNS example', () => {
  const client = buildCommand('client').helpInformation() + '';
  const cmd = buildCommand('client');
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s) });
  cmd.exitOverride();
  assert.throws(() => cmd.parse(['node', 'rsock-client', '--help']));
  assert.match(client, /--forward <local=target>/);
  assert.match(text, /WireGuard and DNS over one tunnel/);
  assert.match(text, /--forward=127\.0\.0\.1:5353=127\.0\.0\.1:53/);
  assert.match(buildCommand('server').helpInformation(), /--allow <host:port>/);
});
