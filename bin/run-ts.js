#!/usr/bin/env node
// Run a TypeScript entry file with tsx (used by `npm run bench` and other scripts): node bin/run-ts.js FILE.ts ARGS…
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const [file, ...args] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: run-ts.js FILE.ts [ARGS…]\n');
  process.exit(2);
}
process.argv = [process.argv[0], path.resolve(file), ...args];
await import(pathToFileURL(path.resolve(file)).href);
