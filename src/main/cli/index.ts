/**
 * The `cliffscope` command line: one verb per job, each with its own --help. A verb answers through the
 * application layer (src/main/api) as the app and `serve` do; the run verbs are made from the run kinds' specs.
 * `main` takes verbs of other faces (`serve`) from the program that assembles them (src/main/program.ts).
 */
import { readFileSync } from 'node:fs';
import { RUN_KINDS, specOf } from '../../shared/runs/registry.js';
import { releaseAllModels } from '../api/model-pool.js';
import { type Command, reportError } from './command.js';
import { runVerb } from './run-verb.js';
import { demoCommand } from './verbs/demo.js';
import { forwardCommand } from './verbs/forward.js';
import { generateCommand } from './verbs/generate.js';
import { inspectCommand } from './verbs/inspect.js';
import { precisionCommand } from './verbs/precision.js';
import { mergeCommand, slurmCommand } from './verbs/cluster.js';
import { datasetCommand, projectCommand, reportCommand } from './verbs/project.js';

/** The CLI's own verbs, in the order `--help` lists them. */
export const COMMANDS: Command[] = [
  demoCommand,
  inspectCommand,
  forwardCommand,
  generateCommand,
  precisionCommand,
  projectCommand,
  datasetCommand,
  ...RUN_KINDS.map((kind) => runVerb(specOf(kind))),
  reportCommand,
  mergeCommand,
  slurmCommand,
];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: cliffscope VERB [options]   (cliffscope VERB --help for details)',
    '',
    'Verbs:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     this help',
    '  --version      print the version',
    '',
  ].join('\n');
}

/** Run one command line; returns the exit code. Models it loaded are released before it returns. */
export async function main(argv: string[], extra: readonly Command[] = []): Promise<number> {
  const commands = [...COMMANDS, ...extra];
  const [verb, ...rest] = argv;
  if (!verb || verb === '-h' || verb === '--help' || verb === 'help') {
    const target = verb === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(target ? target.help : usage(commands));
    return 0;
  }
  if (verb === '--version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const cmd = commands.find((c) => c.name === verb);
  if (!cmd) {
    process.stderr.write(`error: unknown verb "${verb}"\n\n${usage(commands)}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    return reportError(e, cmd);
  } finally {
    await releaseAllModels();
  }
}
