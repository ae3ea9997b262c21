/**
 * A Slurm job directory for one sharded run: what `cliffscope slurm plan` writes, `submit` hands to `sbatch`,
 * `status` reads back from `squeue` / `sacct` and the tasks' own exit files, and `collect` resubmits.
 *
 * Slurm does the scheduling, retries and accounting; this module only writes the array job and reads its state.
 * The directory is self-contained (copy it to a login node as it is): the job script, one task script, a manifest,
 * the input snapshot of the project, and folders for the shard files, logs and exit codes.
 *
 *   DIR/manifest.json     what was planned (run uid, verb and its arguments, shard count, model hash, commands)
 *   DIR/job.sbatch        the array job: #SBATCH --array=0-(N-1)%MAX, one log per task
 *   DIR/task.sh           what one array task runs: the verb with --shard I/N, then its exit code into status/
 *   DIR/input.cliffscope  the project as it was when planned, read-only input of every task
 *   DIR/shards/ logs/ status/
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CliffscopeError } from '../../engine/errors.js';

export const MANIFEST_FORMAT = 'cliffscope-slurm-job';
export const MANIFEST_VERSION = 1;

/** Resources and placement for every array task (each maps to one #SBATCH line when given). */
export interface SlurmResources {
  partition?: string;
  account?: string;
  gpusPerTask?: number;
  cpusPerTask?: number;
  /** As sbatch takes it, e.g. `32G`. */
  mem?: string;
  /** As sbatch takes it, e.g. `04:00:00` or `2-00:00:00`. */
  time?: string;
  /** At most this many tasks at once (the `%MAX` of --array). */
  maxParallel?: number;
}

export interface JobManifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  createdAt: string;
  /** The project the shards are merged into (absolute, as seen from where the plan was made). */
  project: string;
  /** The run every shard belongs to. */
  run: { uid: string; kind: string; name: string | null };
  /** The model's content hash, when known at planning (the shards record it as they load the model). */
  modelHash: string | null;
  /** The verb and its arguments, without PROJECT and --shard (the task adds those). */
  verb: string[];
  shards: number;
  /** Items per shard, by key (index = shard). */
  items: string[][];
  resources: SlurmResources;
  /** How a task starts Cliffscope on a node. */
  command: { node: string; cliffscope: string };
  /** Shell lines sourced before each task (module loads, a virtualenv, CUDA paths), copied from --setup FILE. */
  setup: string | null;
  /** Every sbatch of this directory, in order. */
  submissions: { jobId: string; array: string; at: string }[];
}

const bad = (message: string, hint?: string) => new CliffscopeError('bad-argument', message, { hint });

export const jobPaths = (dir: string) => ({
  manifest: path.join(dir, 'manifest.json'),
  script: path.join(dir, 'job.sbatch'),
  task: path.join(dir, 'task.sh'),
  input: path.join(dir, 'input.cliffscope'),
  shards: path.join(dir, 'shards'),
  logs: path.join(dir, 'logs'),
  status: path.join(dir, 'status'),
  shardFile: (i: number) => path.join(dir, 'shards', `shard-${i}.cliffscope`),
  exitFile: (i: number) => path.join(dir, 'status', `task-${i}.exit`),
  log: (i: number) => path.join(dir, 'logs', `task-${i}.out`),
});

/** One word for a POSIX shell, quoted only when it needs to be. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

const SBATCH_VALUE = /^[A-Za-z0-9_.:,+=@-]+$/;

function checkResources(r: SlurmResources): void {
  for (const [flag, v] of [['partition', r.partition], ['account', r.account], ['mem', r.mem], ['time', r.time]] as const) {
    if (v !== undefined && !SBATCH_VALUE.test(v)) throw bad(`--${flag} "${v}" is not a value sbatch takes`, 'letters, digits and _ . : , + = @ - only');
  }
  if (r.mem !== undefined && !/^\d+[KMGT]?$/i.test(r.mem)) throw bad(`--mem "${r.mem}" must be a size such as 32G or 16000M`);
  if (r.time !== undefined && !/^(\d+-)?\d+(:\d{2}){0,2}$/.test(r.time)) throw bad(`--time "${r.time}" must be minutes, HH:MM:SS or D-HH:MM:SS`);
  for (const [flag, v, min] of [['gpus-per-task', r.gpusPerTask, 0], ['cpus-per-task', r.cpusPerTask, 1], ['max-parallel', r.maxParallel, 1]] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= min && v <= 100_000)) throw bad(`--${flag} must be a whole number ≥ ${min}, got ${v}`);
  }
}

/** The array job script. `array` defaults to every shard (0-(N-1)) with the plan's parallel limit. */
export function sbatchScript(m: JobManifest, dir: string): string {
  checkResources(m.resources);
  const p = jobPaths(dir);
  const r = m.resources;
  const limit = r.maxParallel !== undefined ? `%${r.maxParallel}` : '';
  const lines = [
    '#!/bin/bash',
    `# Cliffscope ${m.run.kind} run ${m.run.uid}, ${m.shards} shard(s). Written by \`cliffscope slurm plan\`; submit with`,
    `# \`cliffscope slurm submit ${shellQuote(dir)}\` (or sbatch this file), merge with \`cliffscope slurm collect\`.`,
    `#SBATCH --job-name=cliffscope-${m.run.kind}-${m.run.uid.slice(0, 8)}`,
    `#SBATCH --array=0-${m.shards - 1}${limit}`,
    `#SBATCH --output=${p.logs}/task-%a.out`,
    `#SBATCH --error=${p.logs}/task-%a.out`,
    '#SBATCH --ntasks=1',
  ];
  if (r.partition) lines.push(`#SBATCH --partition=${r.partition}`);
  if (r.account) lines.push(`#SBATCH --account=${r.account}`);
  if (r.cpusPerTask !== undefined) lines.push(`#SBATCH --cpus-per-task=${r.cpusPerTask}`);
  if (r.gpusPerTask !== undefined && r.gpusPerTask > 0) lines.push(`#SBATCH --gpus-per-task=${r.gpusPerTask}`);
  if (r.mem) lines.push(`#SBATCH --mem=${r.mem}`);
  if (r.time) lines.push(`#SBATCH --time=${r.time}`);
  lines.push('', `exec bash ${shellQuote(p.task)} "$SLURM_ARRAY_TASK_ID"`, '');
  return lines.join('\n');
}

/** The script one task runs: setup, the verb on its shard, and its exit code recorded where `status` reads it. */
export function taskScript(m: JobManifest, dir: string): string {
  const p = jobPaths(dir);
  const verb = m.verb.map(shellQuote).join(' ');
  return [
    '#!/bin/bash',
    '# One shard of the run: cliffscope VERB input.cliffscope … --shard I/N --shard-out shards/shard-I.cliffscope.',
    '# Re-running a shard resumes it: finished items in its shard file are kept.',
    'set -uo pipefail',
    'i=${1:?usage: task.sh SHARD_INDEX}',
    `exit_file=${shellQuote(p.status)}/task-$i.exit`,
    'rm -f "$exit_file"',
    // Written on every way out (a failure, scancel's SIGTERM, the time limit), so status can tell failed from lost.
    "trap 'code=$?; echo \"$code\" > \"$exit_file\"' EXIT",
    "trap 'exit 143' TERM INT",
    `export CLIFFSCOPE_SHARD_COUNT=${m.shards}`,
    ...(m.setup !== null ? ['# --- setup (from --setup) ---', m.setup.trimEnd(), '# --- end of setup ---'] : []),
    `echo "cliffscope shard $i/${m.shards} on $(hostname) at $(date -u +%FT%TZ) (job \${SLURM_JOB_ID:-none})"`,
    `${shellQuote(m.command.node)} ${shellQuote(m.command.cliffscope)} ${verb} ${shellQuote(p.input)} --shard "$i/${m.shards}" --shard-out ${shellQuote(p.shards)}/shard-$i.cliffscope`,
    '',
  ].join('\n');
}

/** Write a job directory (refusing one that already holds a plan). The input snapshot is the caller's to write. */
export function writeJobDir(dir: string, m: JobManifest): void {
  const p = jobPaths(dir);
  if (fs.existsSync(p.manifest)) throw bad(`${dir} already holds a job (manifest.json)`, 'choose a new directory, or use `cliffscope slurm status/collect` on it');
  if (m.items.length !== m.shards) throw new Error(`manifest lists ${m.items.length} shards, not ${m.shards}`);
  for (const d of [dir, p.shards, p.logs, p.status]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(p.script, sbatchScript(m, dir), { mode: 0o755 });
  fs.writeFileSync(p.task, taskScript(m, dir), { mode: 0o755 });
  writeManifest(dir, m);
}

export function writeManifest(dir: string, m: JobManifest): void {
  const file = jobPaths(dir).manifest;
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(m, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

export function readManifest(dir: string): JobManifest {
  const file = jobPaths(dir).manifest;
  let m: JobManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as JobManifest;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliffscopeError(code === 'ENOENT' ? 'missing-file' : 'bad-argument', `${file}: ${code === 'ENOENT' ? 'no such file' : 'not a readable manifest'}`, {
      file,
      hint: 'give the directory `cliffscope slurm plan` wrote',
    });
  }
  if (m?.format !== MANIFEST_FORMAT || m.version !== MANIFEST_VERSION || !Array.isArray(m.items) || m.items.length !== m.shards) {
    throw new CliffscopeError('bad-argument', `${file} is not a Cliffscope job manifest of version ${MANIFEST_VERSION}`, { file });
  }
  return m;
}

// ---- talking to Slurm -------------------------------------------------------------------------------------------

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a Slurm client command; tests pass their own. */
export type Runner = (cmd: string, args: string[]) => Promise<CommandResult>;

/** Runs Slurm's own client commands with `env` (default this process's: SLURM_CONF and PATH as the user set them). */
export function commandRunner(env: NodeJS.ProcessEnv = process.env): Runner {
  return (cmd, args) =>
    new Promise((resolve) => {
      execFile(cmd, args, { encoding: 'utf8', env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        // A command that is not there (ENOENT) reads as exit 127, as a shell would say it.
        const exit = (error as (Error & { code?: unknown }) | null)?.code;
        const code = !error ? 0 : typeof exit === 'number' ? exit : 127;
        resolve({ code, stdout, stderr: stderr || (error && !stdout ? error.message : '') });
      });
    });
}

/** `sbatch --parsable [--array=LIST] job.sbatch` → the job id. */
export async function submitJob(dir: string, run: Runner = commandRunner(), array?: number[]): Promise<{ jobId: string; array: string }> {
  const m = readManifest(dir);
  const p = jobPaths(dir);
  const limit = m.resources.maxParallel !== undefined ? `%${m.resources.maxParallel}` : '';
  const list = array ? `${array.join(',')}${limit}` : `0-${m.shards - 1}${limit}`;
  if (array && array.length === 0) throw new Error('nothing to submit');
  const args = ['--parsable', ...(array ? [`--array=${list}`] : []), p.script];
  const r = await run('sbatch', args);
  if (r.code !== 0) {
    throw new CliffscopeError('scheduler', `sbatch failed (exit ${r.code}): ${(r.stderr || r.stdout).trim() || 'no output'}`, {
      file: p.script,
      hint: r.code === 127 ? 'sbatch is not on PATH here: submit from a login node' : 'check the partition, account and limits in the plan',
    });
  }
  // --parsable prints "jobid" or "jobid;cluster".
  const jobId = r.stdout.trim().split(';')[0]!;
  if (!/^\d+$/.test(jobId)) throw new CliffscopeError('scheduler', `sbatch printed "${r.stdout.trim()}", not a job id`, { file: p.script });
  const submission = { jobId, array: list, at: new Date().toISOString() };
  writeManifest(dir, { ...m, submissions: [...m.submissions, submission] });
  return submission;
}

/** Slurm's state of one array task, as squeue or sacct name it (RUNNING, PENDING, COMPLETED, CANCELLED, …). */
export type SlurmTaskStates = Map<number, string>;

/**
 * `squeue -h -r -o %i|%T` lines → task index → state, for the given job ids. `-r` prints one line per array task
 * (`12_3`), pending ranges included.
 */
export function parseSqueue(out: string, jobIds: ReadonlySet<string>): SlurmTaskStates {
  const states: SlurmTaskStates = new Map();
  for (const line of out.split('\n')) {
    const [id, state] = line.trim().split('|');
    const m = /^(\d+)_(\d+)$/.exec(id ?? '');
    if (m && jobIds.has(m[1]!) && state) states.set(Number(m[2]), state.trim());
  }
  return states;
}

/** `sacct -n -P -X -o JobID,State` lines → task index → state; ranges such as `12_[4-6]` (pending) expand. */
export function parseSacct(out: string, jobIds: ReadonlySet<string>): SlurmTaskStates {
  const states: SlurmTaskStates = new Map();
  for (const line of out.split('\n')) {
    const [id, rawState] = line.trim().split('|');
    if (!id || !rawState) continue;
    const state = rawState.split(' ')[0]!; // "CANCELLED by 0"
    const single = /^(\d+)_(\d+)$/.exec(id);
    if (single) {
      if (jobIds.has(single[1]!)) states.set(Number(single[2]), state);
      continue;
    }
    const range = /^(\d+)_\[(.+)\]$/.exec(id);
    if (!range || !jobIds.has(range[1]!)) continue;
    for (const part of range[2]!.split('%')[0]!.split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let i = a!; i <= (b ?? a!); i++) states.set(i, state);
    }
  }
  return states;
}

/** What Slurm says about the job's tasks: squeue for live ones, sacct (when accounting is on) for the rest. */
export async function slurmTaskStates(jobIds: string[], run: Runner = commandRunner()): Promise<{ states: SlurmTaskStates; notes: string[] }> {
  const notes: string[] = [];
  const ids = new Set(jobIds);
  const states: SlurmTaskStates = new Map();
  if (ids.size === 0) return { states, notes };
  const acct = await run('sacct', ['-n', '-P', '-X', '-j', jobIds.join(','), '-o', 'JobID,State']);
  if (acct.code === 0) for (const [i, s] of parseSacct(acct.stdout, ids)) states.set(i, s);
  else notes.push(`sacct: ${(acct.stderr || acct.stdout).trim().split('\n')[0] ?? `exit ${acct.code}`} (states come from squeue and the tasks' exit files)`);
  const queue = await run('squeue', ['-h', '-r', '-j', jobIds.join(','), '-o', '%i|%T']);
  // squeue exits non-zero for job ids it no longer knows; that just means nothing is queued.
  if (queue.code === 0) for (const [i, s] of parseSqueue(queue.stdout, ids)) states.set(i, s);
  else if (queue.code === 127) notes.push('squeue is not on PATH here: states come from the tasks\' exit files only');
  return { states, notes };
}

/** Shard states as `slurm status` shows them. */
export type ShardState = 'done' | 'running' | 'pending' | 'failed' | 'cancelled' | 'not-submitted' | 'lost';

const LIVE = new Set(['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED', 'RESIZING', 'SUSPENDED']);

/** A shard's state from its exit file (authoritative once written) and what Slurm says. */
export function shardState(exitCode: number | null, slurm: string | undefined, submitted: boolean): ShardState {
  if (slurm && LIVE.has(slurm)) return slurm === 'PENDING' || slurm === 'REQUEUED' ? 'pending' : 'running';
  if (exitCode !== null) return exitCode === 0 ? 'done' : exitCode === 143 || exitCode === 130 ? 'cancelled' : 'failed';
  if (slurm === 'CANCELLED' || slurm === 'PREEMPTED') return 'cancelled';
  if (slurm && slurm !== 'COMPLETED') return 'failed'; // FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE
  return submitted ? 'lost' : 'not-submitted';
}

export function readExitCode(dir: string, i: number): number | null {
  try {
    const v = fs.readFileSync(jobPaths(dir).exitFile(i), 'utf8').trim();
    return /^\d+$/.test(v) ? Number(v) : null;
  } catch {
    return null;
  }
}
