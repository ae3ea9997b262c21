/**
 * Runs the `serve` verb as its own process, the way `cliffscope serve` does (tests spawn:
 * node --import tsx tests/serve/run-serve.ts --port 0).
 */
import { reportError } from '../../src/main/cli/command.js';
import { serveVerb } from '../../src/main/serve/verb.js';

try {
  process.exitCode = await serveVerb.run(process.argv.slice(2));
} catch (e) {
  process.exitCode = reportError(e);
}
