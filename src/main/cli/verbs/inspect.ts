/**
 * `cliffscope inspect`: what a checkpoint folder holds, validated, without compiling it.
 */
import { openCheckpoint } from '../../engine/model/checkpoint.js';
import { type Command, oneModelDir, parseVerbArgs, printHelp } from '../command.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'validate a checkpoint folder and describe its architecture',
  help: `Usage: cliffscope inspect MODEL_DIR [--json]

Reads config.json and the safetensors headers (not the weights), checks every tensor the architecture needs is
present with the shape config.json implies, and prints the model's shape.

Options:
  --json       machine-readable output
  -h, --help   this help
`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, { json: { type: 'boolean' } });
    if (values.help) return printHelp(this);
    const ckpt = openCheckpoint(oneModelDir(this, positionals));
    const c = ckpt.config;
    let parameters = 0;
    const dtypes = new Set<string>();
    for (const t of ckpt.tensors.values()) {
      parameters += t.shape.reduce((a, b) => a * b, 1);
      dtypes.add(t.dtype);
    }
    const info = {
      dir: ckpt.dir,
      architecture: c.architecture,
      layers: c.numLayers,
      hidden: c.hiddenSize,
      heads: c.numHeads,
      kvHeads: c.numKvHeads,
      headDim: c.headDim,
      intermediate: c.intermediateSize,
      vocab: c.vocabSize,
      context: c.maxPositionEmbeddings,
      tiedEmbeddings: c.tieWordEmbeddings,
      ropeScaling: c.ropeScaling.type,
      slidingWindow: c.slidingWindow,
      parameters,
      dtypes: [...dtypes].sort(),
      files: ckpt.files.length,
      eosTokenIds: ckpt.generation.eosTokenIds,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(info)}\n`);
    } else {
      const rows: [string, string][] = [
        ['architecture', info.architecture],
        ['layers × heads', `${info.layers} × ${info.heads} (kv heads ${info.kvHeads}, head_dim ${info.headDim})`],
        ['hidden / mlp', `${info.hidden} / ${info.intermediate}`],
        ['vocab / context', `${info.vocab} / ${info.context}`],
        ['parameters', info.parameters.toLocaleString('en-US')],
        ['weights', `${info.dtypes.join(', ')} in ${info.files} file(s)${info.tiedEmbeddings ? ', tied embeddings' : ''}`],
        ['rope scaling', info.ropeScaling + (info.slidingWindow ? `, sliding window ${info.slidingWindow}` : '')],
      ];
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(16)} ${v}\n`);
    }
    return 0;
  },
};
