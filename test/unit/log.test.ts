// The logger as operators meet it: readable text or one JSON object per line, SIGHUP's reopen after
// logrotate moved the file, and the flags that choose them (--log-format, -f's "log-format", --version).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCommand, ConfigError, Kind, versionLine } from '../../src/cli/options';
import { PROTOCOL_VERSION } from '../../src/core/frame';
import { Logger } from '../../src/util/log';
import { parseFlags } from '../lib/parse-flags';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsock-log-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const parse = parseFlags;

test('text lines carry time and level; json lines parse back to the same message', () => {
  const lines: string[] = [];
  const text = new Logger('info');
  text.sink = (l) => lines.push(l);
  text.info('conn up "quoted"');
  assert.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  conn up "quoted"\n$/);
  const json = new Logger('debug', undefined, 'json');
  json.sink = (l) => lines.push(l);
  json.warn('a "tricky"\nmessage\\');
  json.debug('detail');
  const o = JSON.parse(lines[1]);
  assert.deepEqual(Object.keys(o), ['time', 'level', 'msg']);
  assert.equal(o.level, 'warn');
  assert.equal(o.msg, 'a "tricky"\nmessage\\');
  assert.ok(Math.abs(Date.parse(o.time) - Date.now()) < 60_000);
  assert.equal(lines[1].split('\n').length, 2, 'one line per message, whatever the message holds');
  assert.equal(JSON.parse(lines[2]).level, 'debug');
});

test('reopen() writes to a new file of the same name once the old one was moved away', () => {
  const file = path.join(dir, 'a.log');
  const log = new Logger('info', file);
  log.info('before');
  fs.renameSync(file, `${file}.1`);
  log.info('still old');
  assert.equal(log.reopen(), null);
  log.info('after');
  log.closeFile();
  assert.equal(fs.readFileSync(`${file}.1`, 'utf8').split('\n').filter(Boolean).length, 2);
  assert.match(fs.readFileSync(file, 'utf8'), /INFO  after\n$/);
});

test('a reopen that fails keeps writing to the old file and says why', () => {
  const sub = path.join(dir, 'gone');
  fs.mkdirSync(sub);
  const file = path.join(sub, 'b.log');
  const log = new Logger('info', file);
  fs.renameSync(file, path.join(dir, 'b.log.1'));
  fs.rmdirSync(sub);
  const err = log.reopen();
  assert.match(err ?? '', /cannot reopen .*b\.log: ENOENT/);
  log.info('kept');
  log.closeFile();
  assert.match(fs.readFileSync(path.join(dir, 'b.log.1'), 'utf8'), /kept/);
  assert.equal(new Logger('info').reopen(), null, 'stderr: nothing to reopen');
});

test('--log-format: text by default, json by flag or config key, anything else a clear error', () => {
  assert.equal(parse('client', ['--taddr=10.0.0.1']).logFormat, 'text');
  assert.equal(parse('server', ['--taddr=127.0.0.1:9', '--log-format=json']).logFormat, 'json');
  const cfg = path.join(dir, 'c.json');
  fs.writeFileSync(cfg, JSON.stringify({ taddr: '10.0.0.1', 'log-format': 'json' }));
  assert.equal(parse('client', ['-f', cfg]).logFormat, 'json');
  assert.equal(parse('client', ['-f', cfg, '--log-format', 'text']).logFormat, 'text', 'the flag wins over the file');
  assert.throws(() => parse('client', ['--taddr=10.0.0.1', '--log-format=xml']), (e: unknown) =>
    e instanceof ConfigError && e.message === '--log-format: "xml" must be text or json');
});

test('--version names the program, the package version and the wire protocol', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  assert.equal(versionLine('server'), `rsock-server ${pkg.version} (wire protocol ${PROTOCOL_VERSION})`);
  let out = '';
  const cmd = buildCommand('client');
  cmd.exitOverride();
  cmd.configureOutput({ writeOut: (s) => { out += s; } });
  assert.throws(() => cmd.parse(['node', 'rsock-client', '--version']), (e: unknown) => (e as { code?: string }).code === 'commander.version');
  assert.equal(out, `${versionLine('client')}\n`);
});
