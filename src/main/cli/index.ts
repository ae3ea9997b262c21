/**
 * The `cliffscope` command line: one verb per job, each with its own --help. Verbs drive the same engine the app
 * uses; none of them imports electron.
 */
import { readFileSync } from 'node:fs';
import { type Command, reportError } from './command.js';
import { demoCommand } from './verbs/demo.js';
import { forwardCommand } from './verbs/forward.js';
import { generateCommand } from './verbs/generate.js';
import { inspectCommand } from './verbs/inspect.js';
import { ablateCommand, headsCommand, judgeCommand, probeCommand, selectCommand, traceCommand, transcriptsCommand } from './verbs/method.js';
import { precisionCommand } from './verbs/precision.js';
import { datasetCommand, projectCommand, reportCommand } from './verbs/project.js';
import { serveCommand } from './verbs/serve.js';

export const COMMANDS: Command[] = [
  demoCommand,
  inspectCommand,
  forwardCommand,
  generateCommand,
  precisionCommand,
  projectCommand,
  datasetCommand,
  transcriptsCommand,
  probeCommand,
  traceCommand,
  headsCommand,
  ablateCommand,
  judgeCommand,
  selectCommand,
  reportCommand,
  serveCommand,
];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: cliffscope VERB [options]   (cliffscope VERB --help for details)',
    '',
    'Verbs:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     this help',
    '  --version      print the version',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '-h' || verb === '--help' || verb === 'help') {
    const target = verb === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(target ? target.help : usage());
    return 0;
  }
  if (verb === '--version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === verb);
  if (!cmd) {
    process.stderr.write(`error: unknown verb "${verb}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    return reportError(e);
  }
}
