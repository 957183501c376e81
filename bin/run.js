'use strict';
// Loads the compiled CLI; says how to build it when it is missing, instead of a stack trace.
const path = require('path');
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
