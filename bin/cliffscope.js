#!/usr/bin/env node
// The `cliffscope` command. The CLI is TypeScript run through tsx, so there is no separate build step for it.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../src/main/program.ts');
process.exitCode = await run(process.argv.slice(2));
