/**
 * The `cliffscope` program: the CLI's verbs and the serve face's `serve` verb, side by side. The faces are siblings
 * (neither imports the other); this is the one place that puts them together.
 */
import { COMMANDS, main } from './cli/index.js';
import { serveVerb } from './serve/verb.js';

/** Every verb of the program. */
export const VERBS = [...COMMANDS, serveVerb];

export function run(argv: string[]): Promise<number> {
  return main(argv, [serveVerb]);
}
