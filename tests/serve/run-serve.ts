/**
 * Runs the `serve` verb as its own process, the way `cliffscope serve` does, without depending on the verb being
 * listed in the CLI's COMMANDS (tests spawn: node --import tsx tests/serve/run-serve.ts --port 0).
 */
import { reportError } from '../../src/main/cli/command.js';
import { serveCommand } from '../../src/main/cli/verbs/serve.js';

try {
  process.exitCode = await serveCommand.run(process.argv.slice(2));
} catch (e) {
  process.exitCode = reportError(e);
}
