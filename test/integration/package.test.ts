// The npm package as a user installs it: `npm pack` in the checkout, then `npm install -g --prefix DIR`
// of the tarball in a fresh directory. The tarball carries the compiled JavaScript (prepack), the addon's
// sources and CMakeLists.txt, and no tests; the install compiles the addon, and the installed commands
// answer --help and --version and load that addon.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exec } from '../lib/proc';
import { REPO } from '../lib/rsock';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsock-pkg-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('npm pack, then npm install -g of the tarball gives working rsock-server and rsock-client', { timeout: 600_000 }, async () => {
  const pack = await exec(['npm', 'pack', '--json', '--pack-destination', dir], { cwd: REPO, timeoutMs: 180_000, allowFail: true });
  assert.equal(pack.code, 0, `npm pack failed:\n${pack.stderr}`);
  const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = info[0].files.map((f) => f.path);
  for (const f of ['bin/rsock-client.js', 'bin/rsock-server.js', 'bin/run.js', 'dist/src/cli/main.js', 'dist/src/io/native.js',
    'native/injector.cc', 'native/crypto.cc', 'CMakeLists.txt', 'package.json', 'README.md']) {
    assert.ok(files.includes(f), `the tarball lacks ${f}`);
  }
  assert.deepEqual(files.filter((f) => /^(test|bench|dist\/test|build)\//.test(f) || f.endsWith('.ts') || f.endsWith('.map')), [],
    'tests, benchmarks, build output, TypeScript sources or source maps in the tarball');

  const prefix = path.join(dir, 'prefix');
  const tarball = path.join(dir, info[0].filename);
  // A fresh directory: nothing of the checkout (its node_modules, its build) can be picked up.
  const inst = await exec(['npm', 'install', '-g', '--prefer-offline', '--no-audit', '--no-fund', '--allow-scripts=rsock', '--prefix', prefix, tarball],
    { cwd: dir, timeoutMs: 540_000, allowFail: true });
  assert.equal(inst.code, 0, `npm install -g failed:\n${inst.stdout}\n${inst.stderr}`);
  const pkgDir = path.join(prefix, 'lib', 'node_modules', 'rsock');
  assert.ok(fs.existsSync(path.join(pkgDir, 'build', 'Release', 'rsock_native.node')), 'the install did not compile the addon');

  const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  for (const kind of ['client', 'server']) {
    const bin = path.join(prefix, 'bin', `rsock-${kind}`);
    const help = await exec([bin, '--help'], { cwd: dir, timeoutMs: 20_000, allowFail: true });
    assert.equal(help.code, 0, `${bin} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^Usage: rsock-${kind} \\[options\\]`));
    assert.match(help.stdout, /--taddr/);
    const v = await exec([bin, '--version'], { cwd: dir, timeoutMs: 20_000, allowFail: true });
    assert.equal(v.stdout.trim(), `rsock-${kind} ${version} (wire protocol 2)`);
  }
  const load = await exec([process.execPath, '-e', `const n = require(${JSON.stringify(path.join(pkgDir, 'dist', 'src', 'io', 'native.js'))}).loadNative();
    if (typeof n !== 'object' || n === null) throw new Error('no addon'); console.log('loaded')`], { cwd: dir, timeoutMs: 20_000, allowFail: true });
  assert.equal(load.stdout.trim(), 'loaded', `the installed addon does not load: ${load.stderr}`);
});
