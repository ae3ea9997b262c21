/**
 * `cliffscope precision`: what int4 weights or float16 activations cost on this checkpoint, measured against the
 * float32 graph (logit differences, top-token and greedy agreement), before a user chooses them.
 */
import { formatPrecisionReport, precisionReport } from '../../engine/analysis/precision-report.js';
import { CliffscopeError } from '../../engine/errors.js';
import { type Command, oneModelDir, parseVerbArgs, printHelp } from '../command.js';
import { checkedModelRef, MODEL_FLAGS, PRECISION_HELP } from '../model-flags.js';

export const precisionCommand: Command = {
  name: 'precision',
  summary: 'measure the accuracy cost of int4 weights or float16 activations on a checkpoint',
  help: `Usage: cliffscope precision MODEL_DIR (--weights int4 | --activations float16) [options]

Compiles the checkpoint at float32 and at the chosen precision, runs both on the same token sequences, and reports
the largest and mean logit difference, the KL divergence, how often the top token agrees, and how long greedy
continuations stay identical. The numbers are this checkpoint's, measured now.

Options:
${PRECISION_HELP}  --cache DIR   compiled-model cache
  --json        machine-readable output
  -h, --help    this help
`,
  async run(argv) {
    const { weights, activations, cache, 'int4-block': block, 'int4-scheme': scheme, 'int4-accuracy-level': level, 'int4-lm-head': head } = MODEL_FLAGS;
    const { values, positionals } = parseVerbArgs(this, argv, {
      weights,
      activations,
      cache,
      'int4-block': block,
      'int4-scheme': scheme,
      'int4-accuracy-level': level,
      'int4-lm-head': head,
      json: { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    const ref = checkedModelRef(oneModelDir(this, positionals), values);
    const variant = ref.precision ?? {};
    if (!variant.weights && !variant.activations) throw new CliffscopeError('bad-argument', 'choose --weights int4 and/or --activations float16 to compare');
    const report = await precisionReport(ref.dir, variant, { cacheRoot: ref.cache });
    process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${formatPrecisionReport(report)}\n`);
    return 0;
  },
};
