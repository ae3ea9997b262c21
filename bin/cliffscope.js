#!/usr/bin/env node
// The `cliffscope` command. The CLI is TypeScript run through tsx, so there is no separate build step for it.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main/cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
