/**
 * A run kind's CLI verb, made from its spec (src/shared/runs/): its flags and help, the run's input built from the
 * flags, and the run started through `run.start` in-process, as serve and the app start it — so the same values
 * are refused with the same messages (naming the flags here). With --resume only the run id is taken: the run
 * keeps its stored settings, so none of the kind's flags is demanded, and any given is an error.
 */
import type { ParamsOf, ResultOf } from '../../shared/contract.js';
import { isShardable, type RunKind, type SpecOf } from '../../shared/runs/registry.js';
import type { CliContext, FlagSpec, Loose } from '../../shared/runs/spec.js';
import { formatRunReport } from '../api/runs.js';
import { CliffscopeError } from '../engine/errors.js';
import { checkSelectionTarget } from '../pipelines/select.js';
import { parseShard } from '../api/cluster/shards.js';
import { jsonSyntaxProblem } from '../engine/io/json-syntax.js';
import { readUntrustedText } from '../engine/io/untrusted-file.js';
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
  request: { type: 'string' },
  ...MODEL_FLAGS,
} as const;

/** The flags of one shard of a run split over processes (README "Running on a cluster"), on every verb that splits. */
const SHARD_FLAGS = {
  shard: { type: 'string' },
  'shard-out': { type: 'string' },
  'run-uid': { type: 'string' },
} as const;

const RUN_HELP = `Model and run:
  --model DIR               the checkpoint folder (required; with --resume, default the run's own)
  --resume RUN              continue an interrupted run with its stored settings (finished items are kept)
  --name NAME               a name for the run
  --tags A,B                tags for the run (filter and group runs by them in the workbench's Compare tab)
  --request FILE            the whole run as JSON ({"kind", "model", "config", "name", "tags"}: a run.start request without
                            the project), instead of --model, --name and the verb's own flags
${RUNTIME_HELP}  --json                    print the run's report as JSON
  -h, --help                this help
`;

const SHARD_HELP = `Splitting the run over processes (README "Running on a cluster"):
  --shard I/N | auto        do only shard I of N (0-based; auto: SLURM_ARRAY_TASK_ID / _COUNT, or Kubernetes'
                            JOB_COMPLETION_INDEX with CLIFFSCOPE_SHARD_COUNT) into a file of its own; the project is
                            only read. Merge the shards' files with: cliffscope merge PROJECT FILE…
  --shard-out FILE          the shard's file (default PROJECT.shards/KIND-UID-IofN.cliffscope); running the same
                            shard again continues it
  --run-uid UID             the run the shards belong to (default: derived from the run's settings and model)
`;

const bad = (message: string, hint?: string) => new CliffscopeError('bad-argument', message, { hint });

function flagLine(f: FlagSpec): string {
  const left = `  --${f.name}${f.arg ? ` ${f.arg}` : ''}`;
  return `${left.padEnd(28)}${f.help}${f.alias ? ` (was --${f.alias})` : ''}`;
}

/** A verb's run as a run.start request, from its argv: what the verb starts, and what `slurm plan` splits. */
export interface VerbRequest {
  start: Loose<ParamsOf<'run.start'>>;
  /** Request field → the flag that set it, for errors. */
  flags: FlagNames;
  json: boolean;
  /** The select verb's --out folder and --force. */
  out: string | undefined;
  force: boolean;
}

/** A run verb: its command, and how its argv becomes a run.start request (which `slurm plan` reuses). */
export interface RunVerbParser {
  command: Command;
  request(argv: string[]): Promise<VerbRequest | 'help'>;
}

export function runVerbParser<K extends RunKind>(spec: SpecOf<K>): RunVerbParser {
  const [name, action] = spec.cli.verb.split(' ') as [string, string | undefined];
  const { outFlag, forceFlag } = spec.cli;
  const shardable = isShardable(spec.kind);
  const own = [...spec.cli.flags, ...(outFlag ? [outFlag] : []), ...(outFlag && forceFlag ? [forceFlag] : [])];
  const options: Options = { ...RUN_FLAGS, ...(shardable ? SHARD_FLAGS : {}) };
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
    ['shard', '--shard'],
    ['shard.out', '--shard-out'],
    ['shard.runUid', '--run-uid'],
    ...MODEL_FLAG_NAMES,
    // Several flags may set one field (--run / --dataset): the first listed names it.
    ...own.filter((f) => f.field).map((f) => [`config.${f.field}`, `--${f.name}`] as [string, string]).reverse(),
  ]);

  const command: Command = {
    name,
    summary: spec.cli.summary,
    help: `Usage: cliffscope ${spec.cli.usage}\n\n${spec.cli.about}\n\nOptions:\n${own.map(flagLine).join('\n')}\n${RUN_HELP}${shardable ? `\n${SHARD_HELP}` : ''}`,
    run: (argv) => runFromArgv(argv),
  };

  async function request(argv: string[]): Promise<VerbRequest | 'help'> {
    const parsed = parseVerbArgs(command, argv, options);
    const { positionals } = parsed;
    const values = singleFlags(parsed.values);
    if (values.help) return 'help';
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
    const shard = shardFromFlags(values);
    const sharded = shard ? { shard } : {};

    // A run.start request of this verb's kind (a generic kind cannot narrow the request union; dispatch checks it).
    let start: Loose<ParamsOf<'run.start'>>;
    if (typeof values.request === 'string') {
      const given = [...own.map((f) => f.name), 'model', 'resume', 'name', 'tags', ...Object.keys(MODEL_FLAGS)].filter((f) => values[f] !== undefined);
      if (given.length) throw bad(`--request holds the whole run; leave out ${given.map((f) => `--${f}`).join(', ')}`);
      start = { ...requestFromFile(values.request, spec.kind), project, ...sharded } as Loose<ParamsOf<'run.start'>>;
    } else if (values.resume !== undefined) {
      const resume = idFlag(values.resume, 'resume', 'RUN');
      const given = [...own.filter((f) => values[f.name] !== undefined), ...(['name', 'tags'] as const).filter((k) => values[k] !== undefined).map((k) => ({ name: k }))];
      if (given.length) {
        throw bad(`--resume ${resume} continues run #${resume} with its stored settings; leave out ${given.map((f) => `--${f.name}`).join(', ')}`, 'to change settings, start a new run');
      }
      const dir = typeof values.model === 'string' ? values.model : await modelOfRun(project, resume);
      start = { project, model: modelRefFromFlags(dir, values), kind: spec.kind, resume, ...sharded } as Loose<ParamsOf<'run.start'>>;
    } else {
      if (typeof values.model !== 'string') throw bad('--model DIR is required', `see: cliffscope ${name} --help`);
      const input = await spec.cli.input(values, await cliContext(project, values.model));
      const named = { ...(typeof values.name === 'string' ? { name: values.name } : {}), ...(typeof values.tags === 'string' ? { tags: parseTags(values.tags) } : {}) };
      start = { project, model: modelRefFromFlags(values.model, values), kind: spec.kind, config: input, ...named, ...sharded } as Loose<ParamsOf<'run.start'>>;
    }
    const out = outFlag ? values[outFlag.name] : undefined;
    const force = forceFlag ? values[forceFlag.name] === true : false;
    if (force && typeof out !== 'string') throw bad(`--${forceFlag!.name} applies to --${outFlag!.name}`);
    if (shard && typeof out === 'string') throw bad(`--${outFlag!.name} applies to a whole run: export the selection once its shards are merged`);
    return { start, flags: flagNames, json, out: typeof out === 'string' ? out : undefined, force };
  }

  async function runFromArgv(argv: string[]): Promise<number> {
    const req = await request(argv);
    if (req === 'help') return printHelp(command);
    const { start, out, force } = req;
    // An export that would replace earlier files is refused now, not after the run has spent its compute.
    if (out !== undefined) checkSelectionTarget(out, { force });
    const result = await call('run.start', start, { flags: req.flags });
    if (out !== undefined && result.status === 'done') {
      const { files } = await call('selection.export', { project: start.project, runId: result.runId, outDir: out, force });
      for (const f of files) process.stderr.write(`wrote ${f}\n`);
    }
    printReport(result, req.json);
    return result.status === 'done' ? 0 : 1;
  }

  return { command, request };
}

export function runVerb<K extends RunKind>(spec: SpecOf<K>): Command {
  return runVerbParser(spec).command;
}

/** --shard / --shard-out / --run-uid as the request's `shard` (its schema checks the values). */
function shardFromFlags(values: Readonly<Record<string, string | boolean | undefined>>): Loose<NonNullable<ParamsOf<'run.start'>['shard']>> | undefined {
  if (typeof values.shard !== 'string') {
    const stray = ['shard-out', 'run-uid'].filter((f) => values[f] !== undefined);
    if (stray.length) throw bad(`${stray.map((f) => `--${f}`).join(', ')} applies to a shard: give --shard I/N too`);
    return undefined;
  }
  const { index, count } = parseShard(values.shard);
  return {
    index,
    count,
    ...(typeof values['shard-out'] === 'string' ? { out: values['shard-out'] } : {}),
    ...(typeof values['run-uid'] === 'string' ? { runUid: values['run-uid'] } : {}),
  };
}

/** A --request file: a run.start request of this verb's kind, without the project (the schema checks the rest). */
function requestFromFile(file: string, kind: RunKind): Record<string, unknown> {
  const text = readUntrustedText(file, { maxBytes: 64 << 20, what: 'request file', code: 'bad-argument' });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliffscopeError('bad-argument', `${file}: not valid JSON (${jsonSyntaxProblem(text)})`, { file });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new CliffscopeError('bad-argument', `${file}: must hold a JSON object (a run.start request without the project)`, { file });
  const req = value as Record<string, unknown>;
  if (req.kind !== kind) throw new CliffscopeError('bad-argument', `${file}: holds a ${String(req.kind)} run, not a ${kind} run`, { file });
  for (const field of ['project', 'shard', 'resume']) {
    if (field in req) throw new CliffscopeError('bad-argument', `${file}: leave out "${field}" (it comes from the command line)`, { file });
  }
  return req;
}

function printReport(result: ResultOf<'run.start'>, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result.shard ? { ...result.report, shard: result.shard } : result.report)}\n`);
    return;
  }
  process.stdout.write(`${formatRunReport(result.report)}\n`);
  const s = result.shard;
  if (s) {
    process.stdout.write(`  shard     ${s.index}/${s.count} of run ${s.runUid}: ${s.done} of ${s.items} item(s) done, in ${s.file}\n`);
    process.stdout.write(`  merge     cliffscope merge PROJECT SHARD_FILE… (every shard's file; safe to repeat as more finish)\n`);
  }
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
