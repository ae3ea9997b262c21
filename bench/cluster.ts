/**
 * `npm run bench -- --cluster`: what splitting a run over processes costs and gains.
 *
 *  - merge: 20,000 synthetic items (a transcript of 300 tokens, its trace and its item each) in 4 shard files merged
 *    into a project: seconds, and peak memory against merging 5,000 (streamed, so it should not grow with the items);
 *    then the run's aggregates computed from the merged items, in a child capped at a 64 MiB JS heap. Targets: the
 *    merge under 10 s; memory flat (SQLite's page caches are bounded per connection; shard files get a small one).
 *  - sweep: the demo's ablation sweep as 1 process × 2 threads against 2 shard processes × 1 thread each (started
 *    together, as two array tasks on this machine), and the merge as a fraction of the sharded sweep's time.
 *
 * Each measurement runs in its own process (peak RSS is per process). JSON to stdout and bench/results/.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assignShards } from '../src/main/api/cluster/shards.js';
import { aggregateTranscripts } from '../src/main/pipelines/transcripts.js';
import { openProject } from '../src/main/store/open.js';
import { openForReading } from '../src/main/store/project-file.js';
import { checkShardSet, mergeShardFile, missingItems, openShardFile, prepareShardFile, type ShardMeta } from '../src/main/store/shards.js';
import { parseDataset } from '../src/main/engine/datasets/import.js';
import { log, maxRssBytes, median, stat } from './util.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(repoRoot, 'bin', 'cliffscope.js');
const UID = '5a17e5e5-0000-4000-8000-00000000c0de';
const MERGE_HEAP_MIB = 64;

interface MergeFigures {
  items: number;
  files: number;
  mergeSeconds: number;
  aggregateSeconds: number;
  peakRssBytes: number;
}

/** A base project with one dataset of `items` prompts, and `files` shard files holding a transcripts run's items. */
function syntheticShards(dir: string, items: number, files: number): { base: string; shards: string[] } {
  const base = path.join(dir, `base-${items}.cliffscope`);
  const store = openProject(base, { create: true });
  const lines = ['prompt', ...Array.from({ length: items }, (_, i) => `"prompt number ${i}, about something"`)];
  store.datasets.add('synthetic', parseDataset(lines.join('\n'), 'csv'), null);
  const model = store.models.add({ path: '/models/synthetic', contentHash: 'sha256:bench', config: {}, compileOptions: {} });
  const probe = store.probes.add({ modelId: model.id, name: 'p', residIndex: 1, positionRule: 'answer-boundary', weights: new Float32Array(8), bias: 0 });
  const rows = store.datasets.items(1);
  store.close();
  const config = { datasetId: 1, chat: true, maxNewTokens: 300, seed: 0, batchSize: 8, settings: [{ key: 'baseline' }], probeId: probe.id };
  const assignment = assignShards(
    rows.map((r) => ({ key: `${r.id}:baseline`, cost: r.prompt.length })),
    files,
  );
  const tokens = Int32Array.from({ length: 300 }, (_, i) => (i * 7919) % 32000);
  const scores = Float32Array.from({ length: 300 }, (_, i) => (i % 97) / 97);
  const shards: string[] = [];
  for (let s = 0; s < files; s++) {
    const file = path.join(dir, `shard-${items}-${s}.cliffscope`);
    const meta: ShardMeta = { runUid: UID, kind: 'transcripts', config, modelHash: 'sha256:bench', index: s, count: files, assignment };
    const input = openForReading(base, { allowVacuumInto: true });
    prepareShardFile(input, base, file, meta);
    input.close();
    const shard = openProject(file);
    const run = shard.runs.start({ uid: UID, kind: 'transcripts', modelId: model.id, datasetId: 1, config });
    const mine = new Set(assignment[s]);
    shard.transaction(() => {
      for (const r of rows) {
        const key = `${r.id}:baseline`;
        if (!mine.has(key)) continue;
        shard.runs.commitItem(run.id, key, (st) => {
          const id = st.transcripts.add({ runId: run.id, itemId: r.id, prompt: r.prompt, tokenIds: tokens, promptTokens: 20, text: 'answer', thinkingStart: 21, thinkingEnd: 200, answerBoundary: 202, finishReason: 'eos', headScaleKey: 'baseline' });
          st.traces.add({ runId: run.id, transcriptId: id, probeId: probe.id, residIndex: 1, scores, plateau: 0.9, final: 0.1, ms: 0.8, steepestDropPos: 201, cliffWidth: 2 });
          return { transcriptId: id };
        });
      }
    });
    shard.runs.finish(run.id);
    shard.close();
    shards.push(file);
  }
  return { base, shards };
}

/** In a child process (its peak memory its own): merge shard files made by another, then the aggregates. */
function mergeChild(base: string, shards: string[], items: number): MergeFigures {
  const files = shards.length;
  const t0 = performance.now();
  const opened = shards.map((f) => ({ file: f, ...openShardFile(f) }));
  const store = openProject(base);
  checkShardSet(store.db, base, opened);
  let runId = 0;
  for (const s of opened) runId = mergeShardFile(store.db, s.file, s.db, s.meta).runId;
  const missing = missingItems(store.db, runId, opened[0]!.meta);
  const mergeSeconds = (performance.now() - t0) / 1000;
  if (missing.length) throw new Error(`${missing.length} items missing after the merge`);
  const peakAfterMerge = maxRssBytes();
  const t1 = performance.now();
  store.runs.start(runId);
  aggregateTranscripts(store, runId);
  store.runs.finish(runId, 'done');
  const aggregateSeconds = (performance.now() - t1) / 1000;
  for (const s of opened) s.db.close();
  store.close();
  return { items, files, mergeSeconds, aggregateSeconds, peakRssBytes: peakAfterMerge };
}

function runSelf(args: string[], nodeFlags: string[] = []): unknown {
  const r = spawnSync(process.execPath, [...nodeFlags, path.join(repoRoot, 'bin', 'run-ts.js'), fileURLToPath(import.meta.url), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

/** Wall seconds of commands started together (each its own process), and whether they all succeeded. */
function wall(commands: string[][], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const script = commands.map((c) => `${c.map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(' ')} >/dev/null 2>&1 &`).join('\n') + '\nfail=0; for p in $(jobs -p); do wait $p || fail=1; done; exit $fail';
  const r = spawnSync('bash', ['-c', script], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`a sweep process failed:\n${commands.map((c) => c.join(' ')).join('\n')}`);
  return (performance.now() - t0) / 1000;
}

async function sweepFigures(dir: string, reps: number) {
  const { runDemo } = await import('../src/main/api/demo/run-demo.js');
  const project = path.join(dir, 'demo.cliffscope');
  const report = await runDemo({ projectFile: project, cacheRoot: path.join(dir, 'cache'), threads: 1, log: () => undefined });
  const verb = ['ablate', '--model', report.modelDir, '--heads-run', String(report.runs.heads), '--harmful', 'demo-harmful', '--harmless', 'demo-harmless', '--probe', '1', '--max-new-tokens', '40', '--cache', path.join(dir, 'cache')];
  const env = { ...process.env, CLIFFSCOPE_CACHE: path.join(dir, 'cache') };
  const one: number[] = [];
  const two: number[] = [];
  const merge: number[] = [];
  for (let r = 0; r < reps; r++) {
    const single = path.join(dir, `single-${r}.cliffscope`);
    fs.copyFileSync(project, single);
    one.push(wall([[process.execPath, CLI, verb[0]!, single, ...verb.slice(1), '--threads', '2']], env));
    const shards = [0, 1].map((i) => path.join(dir, `shard-${r}-${i}.cliffscope`));
    two.push(wall(shards.map((out, i) => [process.execPath, CLI, verb[0]!, project, ...verb.slice(1), '--threads', '1', '--shard', `${i}/2`, '--shard-out', out]), env));
    const target = path.join(dir, `merged-${r}.cliffscope`);
    fs.copyFileSync(project, target);
    merge.push(wall([[process.execPath, CLI, 'merge', target, ...shards]], env));
  }
  const shardedWithMerge = two.map((t, i) => t + merge[i]!);
  return {
    what: "the demo's ablation sweep (30 harmful + 30 harmless prompts × its cells, 40 new tokens), each process timed whole (start-up included)",
    oneProcessTwoThreadsSeconds: stat(one),
    twoShardsOneThreadSeconds: stat(two),
    mergeSeconds: stat(merge),
    mergeFractionOfShardedSweep: median(merge) / median(shardedWithMerge),
    speedupTwoShards: median(one) / median(shardedWithMerge),
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--shards-child') {
    process.stdout.write(`${JSON.stringify(syntheticShards(argv[1]!, Number(argv[2]), Number(argv[3])))}\n`);
    return;
  }
  if (argv[0] === '--merge-child') {
    const { base, shards } = JSON.parse(argv[1]!) as { base: string; shards: string[] };
    process.stdout.write(`${JSON.stringify(mergeChild(base, shards, Number(argv[2])))}\n`);
    return;
  }
  await runClusterBench(argv);
}

export async function runClusterBench(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-bench-cluster-'));
  const startedAt = new Date();
  try {
    log('cluster bench: merging synthetic shards');
    // The merging child runs under a 64 MiB JS heap: a merge that held the items in memory could not finish.
    const merged = (items: number) => runSelf(['--merge-child', JSON.stringify(runSelf(['--shards-child', dir, String(items), '4'])), String(items)], [`--max-old-space-size=${MERGE_HEAP_MIB}`]) as MergeFigures;
    const small = merged(quick ? 1000 : 5000);
    const large = merged(quick ? 4000 : 20000);
    log(`merge: ${large.items} items in ${large.mergeSeconds.toFixed(2)} s (peak RSS ${(large.peakRssBytes / 2 ** 20).toFixed(0)} MiB; ${small.items} items: ${(small.peakRssBytes / 2 ** 20).toFixed(0)} MiB)`);
    log('cluster bench: the demo sweep, one process against two shards');
    const sweep = await sweepFigures(dir, quick ? 1 : 3);
    const report = {
      bench: 'cluster',
      variant: quick ? 'quick' : 'full',
      startedAt: startedAt.toISOString(),
      machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, loadAverage: os.loadavg() },
      merge: { jsHeapCapMiB: MERGE_HEAP_MIB, small, large, peakRssGrowth: large.peakRssBytes / small.peakRssBytes },
      sweep,
      targets: {
        mergeUnder10s: { target: '20,000 items merged in under 10 s', measured: large.mergeSeconds, met: large.items >= 20000 ? large.mergeSeconds < 10 : null },
        memoryFlat: { target: 'peak RSS merging 4× the items within 1.25× (streamed, not loaded whole)', measured: large.peakRssBytes / small.peakRssBytes, met: large.peakRssBytes / small.peakRssBytes <= 1.25 },
      },
    };
    const json = JSON.stringify(report, null, 2);
    process.stdout.write(`${json}\n`);
    const out = path.join(repoRoot, 'bench', 'results', `${startedAt.toISOString().replace(/[:.]/g, '-')}-cluster-${report.variant}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${json}\n`);
    log(`wrote ${out}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (path.resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) await main();
