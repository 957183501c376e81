'use strict';
// Loads the compiled CLI; says how to build it when it is missing, instead of a stack trace.
const path = require('path');
// V8 doubles the young generation (up to 2 x 16 MiB) whenever a scavenge finds many survivors, and
// never shrinks it while the load lasts: under a steady load RSS crept up by 10-15 MiB over 15 minutes
// (BENCHMARKS.md, long soak) with no more live objects. rsock's garbage is short-lived, so the
// starting size (1 MiB semi-spaces) is enough: a scavenge every fraction of a second, ~0.3 ms each.
// Set here, before the heap has grown; a command-line --max-semi-space-size would not be seen by
// `node bin/rsock-client.js` runs or by the packaged bin.
require('v8').setFlagsFromString('--semi-space-growth-factor=1');
module.exports = function run(kind) {
  const entry = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
  let main;
  try {
    main = require(entry).main;
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('main.js')) {
      process.stderr.write(`rsock-${kind}: not built yet; run "npm run build" (or "sudo npm test") in ${path.join(__dirname, '..')}\n`);
      process.exit(2);
    }
    throw e;
  }
  main(kind).catch((e) => {
    process.stderr.write(`rsock-${kind}: ${e && e.message ? e.message : e}\n`);
    process.exit(1);
  });
};
