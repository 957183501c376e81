// The architecture rules that a reader relies on, checked: the core is pure, files stay small.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..', '..');

function files(dir: string, ends: RegExp): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(rel, ends));
    else if (ends.test(e.name)) out.push(rel);
  }
  return out;
}

const lines = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8').split('\n').length - 1;

test('src/core imports nothing outside src/core, type-only imports aside', () => {
  const bad: string[] = [];
  for (const f of files('src/core', /\.ts$/)) {
    const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
    for (const m of text.matchAll(/^(import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)) {
      if (!m[2] && !m[3].startsWith('./')) bad.push(`${f}: ${m[0].split('\n')[0]}`);
    }
    if (/\brequire\(/.test(text)) bad.push(`${f}: require()`);
  }
  assert.deepEqual(bad, []);
});

test('no source file over 300 lines, no test file over 400', () => {
  const big: string[] = [];
  for (const f of [...files('src', /\.ts$/), ...files('native', /\.(cc|h)$/), ...files('bench', /\.ts$/)]) {
    if (lines(f) > 300) big.push(`${f}: ${lines(f)}`);
  }
  for (const f of files('test', /\.ts$/)) if (lines(f) > 400) big.push(`${f}: ${lines(f)}`);
  assert.deepEqual(big, []);
});

// A module whose exports object V8 keeps as a dictionary (what a re-export does to it: TypeScript
// declares the name as data, then redefines it as a getter) makes optimized code load each of its
// exports through a generic LoadIC call: 14 such calls per TxBatch.reserveFrame, ~2 µs per crossing
// of the tunnel (BENCHMARKS.md). The data path's modules must keep fast exports; a facade may not.
test('the data path\'s modules keep fast exports objects (no re-exports in them)', () => {
  const facades = new Set(['src/core/tls-shape.js']);
  const mods = ['src/core', 'src/tunnel', 'src/io'].flatMap((d) => files(path.join('dist', d), /\.js$/))
    .map((f) => path.relative('dist', f)).filter((f) => !facades.has(f));
  assert.ok(mods.length > 40, `found only ${mods.length} modules under dist/`);
  const script = `const out = []; for (const m of ${JSON.stringify(mods)}) {
    const e = require(${JSON.stringify(path.join(ROOT, 'dist'))} + '/' + m); if (!%HasFastProperties(e)) out.push(m); }
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', script], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [], 'modules whose exports are a dictionary');
});
