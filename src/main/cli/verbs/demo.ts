/**
 * `cliffscope demo`: the whole method on the built-in planted-cliff model, offline, in seconds — probe, transcripts,
 * trace, heads, ablation sweep and selection stored in a demo project, with a report that sets the ranked heads
 * beside the planted ones.
 */
import { defaultDemoProject, formatDemoReport, runDemo } from '../../api/demo/run-demo.js';
import { type Command, parseVerbArgs, printHelp } from '../command.js';
import { threadsFlag } from '../model-flags.js';
import { Progress } from '../progress.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the whole method on the built-in planted-cliff model and print a report',
  help: `Usage: cliffscope demo [--project FILE] [--json]

Builds the demo model (a small Llama whose weights are constructed so that three planted heads suppress a refusal
feature at </think>), then runs probe → transcripts → trace → heads → ablation sweep → selection in a demo project
and prints probe accuracy, mean plateau / final / MS, the top-ranked heads next to the planted ones, and the attack
success rate before and after ablating them. Reopening the project reuses finished runs.

Options:
  --project FILE   the demo project (default: <cache>/demo/demo.cliffscope)
  --cache DIR      model cache (default: $CLIFFSCOPE_CACHE or ~/.cache/cliffscope)
  --threads N      ONNX Runtime threads (default 1: the demo model is tiny)
  --json           machine-readable report
  -h, --help       this help
`,
  async run(argv) {
    const { values } = parseVerbArgs(this, argv, { project: { type: 'string' }, cache: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' } });
    if (values.help) return printHelp(this);
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    const bars = new Map<string, Progress>();
    const started = Date.now();
    try {
      const report = await runDemo({
        projectFile: values.project ?? defaultDemoProject(values.cache),
        cacheRoot: values.cache,
        threads: threadsFlag(values.threads),
        signal: controller.signal,
        log: values.json ? undefined : (m) => process.stderr.write(`${m}\n`),
        onProgress: (stage, done, total) => {
          if (values.json) return;
          if (!bars.has(stage)) bars.set(stage, new Progress(stage));
          bars.get(stage)!.update(done, total);
        },
      });
      if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(`\n${formatDemoReport(report)}\n(${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
      return report.heads.topMatchesPlanted ? 0 : 1;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  },
};
