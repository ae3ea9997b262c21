/**
 * Scale-out verbs: `merge` (shard files back into the project's run) and `slurm plan|submit|status|collect` (a run
 * split over a Slurm job array). Each answers through the application layer (run.merge, cluster.*), as the app does.
 */
import type { ResultOf } from '../../../shared/contract.js';
import { RUN_KINDS, SHARDABLE_KINDS, specOf } from '../../../shared/runs/registry.js';
import type { Loose } from '../../../shared/runs/spec.js';
import { formatRunReport } from '../../api/runs.js';
import { CliffscopeError } from '../../engine/errors.js';
import { call } from '../api.js';
import { type Command, numberFlag, parseVerbArgs, printHelp, singleFlags } from '../command.js';
import { runVerbParser } from '../run-verb.js';

const bad = (message: string, hint?: string) => new CliffscopeError('bad-argument', message, { hint });

function mergeText(r: ResultOf<'run.merge'>): string {
  const lines = [
    `merged ${r.files.length} shard file(s) into run #${r.runId} (${r.kind}, uid ${r.runUid})${r.created ? ', new in the project' : ''}`,
    ...r.files.map((f) => `  shard ${f.index}: ${f.added} item(s) added, ${f.identical} already there — ${f.file}`),
    `  items     ${r.items.done} of ${r.items.expected} done${r.items.failed ? `, ${r.items.failed} failed` : ''}${r.items.missing ? `, ${r.items.missing} missing` : ''}`,
  ];
  if (!r.complete) {
    const byShard = new Map<number, number>();
    for (const m of r.missing) byShard.set(m.shard, (byShard.get(m.shard) ?? 0) + 1);
    lines.push(`  missing   ${r.missing.map((m) => m.key).join(', ')}${r.items.missing > r.missing.length ? ', …' : ''}`);
    lines.push(`            (from shard${byShard.size > 1 ? 's' : ''} ${[...byShard.keys()].join(', ')}: merge their files when they finish, or resume the run here)`);
  }
  return [...lines, '', formatRunReport(r.report)].join('\n');
}

export const mergeCommand: Command = {
  name: 'merge',
  summary: "merge shard files (--shard runs) into the project's run; safe to repeat",
  help: `Usage: cliffscope merge PROJECT SHARD_FILE… [--json]

Merges the files that shards of one run wrote (a verb run with --shard I/N) into PROJECT's run: the run is created
from them when PROJECT does not have it. Items already there with the same content are accepted once, so merging
again after more shards finish is safe; a shard of another run, model or config, or one whose items conflict with
what is merged, is refused whole with the reason. When every item is in, the run's aggregates (ASR per cell, mean
MS, head means, the selection) are computed from the items and the run is done; until then it is interrupted and the
missing items are listed (merge more shards, or resume the run here).

Options:
  --json        the result as JSON
  -h, --help    this help
`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, { json: { type: 'boolean' } });
    if (values.help) return printHelp(this);
    const [project, ...files] = positionals;
    if (!project || files.length === 0) throw bad('usage: cliffscope merge PROJECT SHARD_FILE…', 'see: cliffscope merge --help');
    const r = await call('run.merge', { project, files }, { flags: new Map([['project', 'PROJECT'], ['files', 'SHARD_FILE']]) });
    process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${mergeText(r)}\n`);
    return r.complete ? 0 : 3;
  },
};

const SLURM_FLAGS = {
  shards: { type: 'string' },
  dir: { type: 'string' },
  partition: { type: 'string' },
  account: { type: 'string' },
  'gpus-per-task': { type: 'string' },
  'cpus-per-task': { type: 'string' },
  mem: { type: 'string' },
  time: { type: 'string' },
  'max-parallel': { type: 'string' },
  setup: { type: 'string' },
  node: { type: 'string' },
  cliffscope: { type: 'string' },
  project: { type: 'string' },
  'no-resubmit': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** The plan's own flags, taken out of argv wherever they stand; the rest is the verb's. */
function splitPlanArgv(argv: string[]): { own: string[]; verb: string[] } {
  const own: string[] = [];
  const verb: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.startsWith('--') ? a.slice(2).split('=')[0]! : '';
    const spec = (SLURM_FLAGS as Record<string, { type: string }>)[name];
    if (spec && name !== 'json' && name !== 'project') {
      own.push(a);
      if (spec.type === 'string' && !a.includes('=')) own.push(argv[++i] ?? '');
    } else verb.push(a);
  }
  return { own, verb };
}

function statusText(s: ResultOf<'cluster.status'>): string {
  const width = Math.max(5, ...s.shards.map((x) => x.state.length));
  return [
    `job ${s.dir}: ${s.kind} run ${s.runUid}, ${s.shards.length} shard(s), into ${s.project}`,
    `submissions: ${s.submissions.map((x) => `job ${x.jobId} (array ${x.array})`).join(', ') || 'none yet'}`,
    '',
    `  shard  ${'state'.padEnd(width)}  items done  slurm`,
    ...s.shards.map((x) => `  ${String(x.index).padStart(5)}  ${x.state.padEnd(width)}  ${`${x.done}/${x.items}`.padStart(10)}  ${x.slurm ?? '—'}${x.exitCode !== null && x.exitCode !== 0 ? ` (exit ${x.exitCode}; log ${x.log})` : ''}`),
    ...s.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

export const slurmCommand: Command = {
  name: 'slurm',
  summary: 'run a verb sharded over a Slurm job array: plan, submit, status, collect (merge and resubmit)',
  help: `Usage: cliffscope slurm plan PROJECT VERB [VERB OPTIONS…] --shards N [--dir DIR] [resources]
       cliffscope slurm submit DIR
       cliffscope slurm status DIR [--json]
       cliffscope slurm collect DIR [--project PROJECT] [--no-resubmit] [--json]

plan writes a self-contained job directory (DIR, default PROJECT.jobs/VERB-TIME): the array script job.sbatch
(#SBATCH --array=0-(N-1)%MAX, one log per task), task.sh (the command each task runs: VERB on its shard, into its
own shard file), run.json (the run, resolved and checked now), manifest.json (which items each shard takes, balanced
by length) and input.cliffscope (the project as it is now: the tasks only read it). No model is loaded and nothing
is submitted: copy DIR to a login node if this machine has no Slurm, or submit it from here.
submit runs sbatch on it. status reads squeue / sacct and each shard's exit code and file. collect merges every
shard file there is into the project (see: cliffscope merge) and resubmits only the shards that failed or were
killed; they continue their own files. Shardable verbs: ${SHARDABLE_KINDS.map((k) => specOf(k).cli.verb).join(', ')}.

Resources (plan): --partition P  --account A  --gpus-per-task G  --cpus-per-task C  --mem 32G  --time 04:00:00
  --max-parallel K   at most K tasks at once
  --setup FILE       shell lines each task sources first (module load …, a virtualenv, CUDA paths)
  --node PATH        Node.js on the nodes (default: node on their PATH)
  --cliffscope PATH  bin/cliffscope.js on the nodes (default: this checkout's, which must be on a shared path)

Options:
  --json          machine-readable output
  -h, --help      this help
`,
  async run(argv) {
    const [action, ...rest] = argv;
    if (!action || action === '--help' || action === '-h') return printHelp(this);
    if (action === 'plan') return plan(this, rest);
    const { values, positionals } = parseVerbArgs(this, rest, SLURM_FLAGS);
    const v = singleFlags(values);
    if (v.help) return printHelp(this);
    const [dir, ...extra] = positionals;
    if (!dir || extra.length) throw bad(`usage: cliffscope slurm ${action} DIR`, 'see: cliffscope slurm --help');
    const json = v.json === true;
    if (action === 'submit') {
      const r = await call('cluster.submit', { jobDir: dir });
      process.stdout.write(json ? `${JSON.stringify(r)}\n` : `submitted job ${r.jobId} (array ${r.array})\nfollow it with: cliffscope slurm status ${dir}\n`);
      return 0;
    }
    if (action === 'status') {
      const s = await call('cluster.status', { jobDir: dir });
      process.stdout.write(json ? `${JSON.stringify(s)}\n` : `${statusText(s)}\n`);
      return s.shards.every((x) => x.state === 'done') ? 0 : 3;
    }
    if (action === 'collect') {
      const r = await call('cluster.collect', { jobDir: dir, ...(typeof v.project === 'string' ? { project: v.project } : {}), resubmit: v['no-resubmit'] !== true });
      if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else {
        process.stdout.write(`${r.merge ? mergeText(r.merge) : 'no shard has finished an item yet: nothing to merge'}\n\n`);
        if (r.resubmitted) process.stdout.write(`resubmitted shard(s) ${r.resubmitted.shards.join(', ')} as job ${r.resubmitted.jobId}\n`);
        process.stdout.write(`${statusText(r.status)}\n`);
      }
      return r.merge?.complete ? 0 : 3;
    }
    throw bad(`unknown action "${action}"`, 'see: cliffscope slurm --help');
  },
};

async function plan(cmd: Command, argv: string[]): Promise<number> {
  const { own, verb } = splitPlanArgv(argv);
  const { values } = parseVerbArgs(cmd, own, SLURM_FLAGS);
  const v = singleFlags(values);
  const json = verb.includes('--json');
  const verbArgs = verb.filter((a) => a !== '--json');
  // PROJECT VERB [action] …: the verb's own parser builds the run, exactly as the verb would start it.
  const [project, verbName, ...tail] = verbArgs;
  if (!project || !verbName) throw bad('usage: cliffscope slurm plan PROJECT VERB [VERB OPTIONS…] --shards N', 'see: cliffscope slurm --help');
  const kind = RUN_KINDS.find((k) => specOf(k).cli.verb.split(' ')[0] === verbName);
  if (!kind) throw bad(`"${verbName}" is not a run verb`, `run verbs: ${RUN_KINDS.map((k) => specOf(k).cli.verb).join(', ')}`);
  const parser = runVerbParser(specOf(kind));
  const action = specOf(kind).cli.verb.split(' ')[1];
  const req = await parser.request(action ? [action, project, ...tail.slice(tail[0] === action ? 1 : 0)] : [project, ...tail]);
  if (req === 'help') return printHelp(parser.command);
  const shards = numberFlag(v.shards, 'shards');
  if (shards === undefined) throw bad('--shards N is required');
  const dir = typeof v.dir === 'string' ? v.dir : `${project}.jobs/${verbName}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const num = (name: string) => numberFlag(v[name], name);
  const resources = Object.fromEntries(
    Object.entries({
      partition: v.partition,
      account: v.account,
      gpusPerTask: num('gpus-per-task'),
      cpusPerTask: num('cpus-per-task'),
      mem: v.mem,
      time: v.time,
      maxParallel: num('max-parallel'),
    }).filter(([, x]) => x !== undefined),
  );
  const params = {
    run: req.start,
    shards,
    jobDir: dir,
    resources,
    ...(typeof v.setup === 'string' ? { setupFile: v.setup } : {}),
    ...(typeof v.node === 'string' ? { node: v.node } : {}),
    ...(typeof v.cliffscope === 'string' ? { cliffscope: v.cliffscope } : {}),
  } as Loose<Parameters<typeof call<'cluster.plan'>>[1]>;
  const flags = new Map([
    ...[...req.flags].map(([field, flag]) => [`run.${field}`, flag] as [string, string]),
    ['shards', '--shards'],
    ['jobDir', '--dir'],
    ['setupFile', '--setup'],
    ['resources.partition', '--partition'],
    ['resources.account', '--account'],
    ['resources.gpusPerTask', '--gpus-per-task'],
    ['resources.cpusPerTask', '--cpus-per-task'],
    ['resources.mem', '--mem'],
    ['resources.time', '--time'],
    ['resources.maxParallel', '--max-parallel'],
  ]);
  const r = await call('cluster.plan', params, { flags });
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else {
    process.stdout.write(
      [
        `planned ${r.kind} run ${r.runUid} as ${r.shards} shard(s) in ${r.dir} (items per shard: ${r.items.join(', ')})`,
        `submit:   ${r.commands.submit}    (or on a login node: ${r.commands.sbatch})`,
        `follow:   ${r.commands.status}`,
        `merge:    ${r.commands.collect}    (merges finished shards, resubmits failed ones)`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}
