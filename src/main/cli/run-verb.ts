/**
 * A run kind's CLI verb, made from its spec (src/shared/runs/): its flags and help, the run's input built from the
 * flags, and the run started through `run.start` in-process, as serve and the app start it — so the same values
 * are refused with the same messages (naming the flags here). With --resume only the run id is taken: the run
 * keeps its stored settings, so none of the kind's flags is demanded, and any given is an error.
 */
import type { ParamsOf, ResultOf } from '../../shared/contract.js';
import { type RunKind, type SpecOf } from '../../shared/runs/registry.js';
import type { CliContext, FlagSpec, Loose } from '../../shared/runs/spec.js';
import { formatRunReport } from '../api/runs.js';
import { CliffscopeError } from '../engine/errors.js';
import { checkSelectionTarget } from '../pipelines/select.js';
import { call, type FlagNames } from './api.js';
import { type Command, idFlag, numberFlag, numbersFlag, type Options, parseVerbArgs, printHelp, singleFlags } from './command.js';
import { MODEL_FLAG_NAMES, MODEL_FLAGS, modelRefFromFlags, RUNTIME_HELP } from './model-flags.js';
import { parseTags } from '../../shared/values.js';

const RUN_FLAGS = {
  model: { type: 'string' },
  resume: { type: 'string' },
  name: { type: 'string' },
  tags: { type: 'string' },
  json: { type: 'boolean' },
  ...MODEL_FLAGS,
} as const;

const RUN_HELP = `Model and run:
  --model DIR               the checkpoint folder (required; with --resume, default the run's own)
  --resume RUN              continue an interrupted run with its stored settings (finished items are kept)
  --name NAME               a name for the run
  --tags A,B                tags for the run (filter and group runs by them in the workbench's Compare tab)
${RUNTIME_HELP}  --json                    print the run's report as JSON
  -h, --help                this help
`;

const bad = (message: string, hint?: string) => new CliffscopeError('bad-argument', message, { hint });

function flagLine(f: FlagSpec): string {
  const left = `  --${f.name}${f.arg ? ` ${f.arg}` : ''}`;
  return `${left.padEnd(28)}${f.help}${f.alias ? ` (was --${f.alias})` : ''}`;
}

export function runVerb<K extends RunKind>(spec: SpecOf<K>): Command {
  const [name, action] = spec.cli.verb.split(' ') as [string, string | undefined];
  const { outFlag, forceFlag } = spec.cli;
  const own = [...spec.cli.flags, ...(outFlag ? [outFlag] : []), ...(outFlag && forceFlag ? [forceFlag] : [])];
  const options: Options = { ...RUN_FLAGS };
  for (const f of own) {
    options[f.name] = { type: f.arg ? 'string' : 'boolean' };
    if (f.alias) options[f.alias] = { type: f.arg ? 'string' : 'boolean' };
  }
  const flagNames: FlagNames = new Map([
    ['project', 'PROJECT'],
    ['model.dir', '--model'],
    ['resume', '--resume'],
    ['name', '--name'],
    ['tags', '--tags'],
    ...MODEL_FLAG_NAMES,
    // Several flags may set one field (--run / --dataset): the first listed names it.
    ...own.filter((f) => f.field).map((f) => [`config.${f.field}`, `--${f.name}`] as [string, string]).reverse(),
  ]);

  const cmd: Command = {
    name,
    summary: spec.cli.summary,
    help: `Usage: cliffscope ${spec.cli.usage}\n\n${spec.cli.about}\n\nOptions:\n${own.map(flagLine).join('\n')}\n${RUN_HELP}`,
    async run(argv) {
      const parsed = parseVerbArgs(cmd, argv, options);
      const { positionals } = parsed;
      const values = singleFlags(parsed.values);
      if (values.help) return printHelp(cmd);
      for (const f of own) {
        if (!f.alias || values[f.alias] === undefined) continue;
        process.stderr.write(`note: --${f.alias} is now --${f.name}; the old name still works but will go\n`);
        values[f.name] ??= values[f.alias];
      }
      if (action !== undefined && positionals[0] !== action) throw bad(`usage: cliffscope ${spec.cli.verb} PROJECT …`, `see: cliffscope ${name} --help`);
      const [project, ...extra] = action !== undefined ? positionals.slice(1) : positionals;
      if (!project) throw bad('name the project file first', `see: cliffscope ${name} --help`);
      if (extra.length) throw bad(`${spec.cli.verb} takes one PROJECT, got also "${extra.join(' ')}"`);
      const json = values.json === true;

      // A run.start request of this verb's kind (a generic kind cannot narrow the request union; dispatch checks it).
      let start: Loose<ParamsOf<'run.start'>>;
      if (values.resume !== undefined) {
        const resume = idFlag(values.resume, 'resume', 'RUN');
        const given = [...own.filter((f) => values[f.name] !== undefined), ...(['name', 'tags'] as const).filter((k) => values[k] !== undefined).map((k) => ({ name: k }))];
        if (given.length) {
          throw bad(`--resume ${resume} continues run #${resume} with its stored settings; leave out ${given.map((f) => `--${f.name}`).join(', ')}`, 'to change settings, start a new run');
        }
        const dir = typeof values.model === 'string' ? values.model : await modelOfRun(project, resume);
        start = { project, model: modelRefFromFlags(dir, values), kind: spec.kind, resume } as Loose<ParamsOf<'run.start'>>;
      } else {
        if (typeof values.model !== 'string') throw bad('--model DIR is required', `see: cliffscope ${name} --help`);
        const input = await spec.cli.input(values, await cliContext(project, values.model));
        const named = { ...(typeof values.name === 'string' ? { name: values.name } : {}), ...(typeof values.tags === 'string' ? { tags: parseTags(values.tags) } : {}) };
        start = { project, model: modelRefFromFlags(values.model, values), kind: spec.kind, config: input, ...named } as Loose<ParamsOf<'run.start'>>;
      }
      const out = outFlag ? values[outFlag.name] : undefined;
      const force = forceFlag ? values[forceFlag.name] === true : false;
      if (force && typeof out !== 'string') throw bad(`--${forceFlag!.name} applies to --${outFlag!.name}`);
      // An export that would replace earlier files is refused now, not after the run has spent its compute.
      if (typeof out === 'string') checkSelectionTarget(out, { force });
      const result = await call('run.start', start, { flags: flagNames });
      if (typeof out === 'string' && result.status === 'done') {
        const { files } = await call('selection.export', { project, runId: result.runId, outDir: out, force });
        for (const f of files) process.stderr.write(`wrote ${f}\n`);
      }
      printReport(result, json);
      return result.status === 'done' ? 0 : 1;
    },
  };
  return cmd;
}

function printReport(result: ResultOf<'run.start'>, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(result.report)}\n` : `${formatRunReport(result.report)}\n`);
}

/** The checkpoint folder a run was made with (resuming without --model). */
async function modelOfRun(project: string, runId: number): Promise<string> {
  const { report } = await call('run.report', { project, runId }, { flags: new Map([['runId', '--resume']]) });
  if (!report.model) throw bad(`run #${runId} records no model`, 'pass --model DIR');
  return report.model.path;
}

/** What building a run's input from flags may use: the project's datasets by name, the model's shape. */
async function cliContext(project: string, modelDir: string): Promise<CliContext> {
  const { file, datasets } = await call('project.open', { file: project });
  let shape: Promise<{ layers: number; heads: number }> | undefined;
  return {
    dataset(ref, flag) {
      if (ref === undefined) throw bad(`--${flag} DATASET is required`);
      if (/^\d+$/.test(ref)) return Number(ref);
      const found = datasets.find((d) => d.name === ref);
      if (!found) {
        const names = datasets.map((d) => `${d.name} (#${d.id})`);
        throw new CliffscopeError('bad-argument', `no dataset "${ref}" in ${file}`, {
          hint: names.length ? `datasets here: ${names.join(', ')}` : 'import one with: cliffscope dataset import PROJECT FILE --name NAME',
        });
      }
      return found.id;
    },
    required(value, flag) {
      if (typeof value !== 'string') throw bad(`--${flag} is required`);
      return value;
    },
    id: (value, flag) => idFlag(value, flag),
    number: (value, flag) => numberFlag(value, flag),
    numbers: (value, flag) => numbersFlag(value, flag),
    shape: () => (shape ??= call('model.inspect', { dir: modelDir }, { flags: new Map([['dir', '--model']]) }).then((m) => ({ layers: m.layers, heads: m.heads }))),
    fail(message) {
      throw bad(message);
    },
  };
}
