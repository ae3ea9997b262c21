/**
 * `cliffscope forward`: one forward pass, every activation the method uses written to a safetensors file that
 * loads straight into a notebook (`safetensors.torch.load_file`).
 */
import fs from 'node:fs';
import { acquireModel } from '../../api/model-pool.js';
import { CliffscopeError } from '../../engine/errors.js';
import { checkOutputFile, writeSafetensors } from '../../engine/model/safetensors.js';
import { readHeadScaleFile } from '../../engine/runtime/head-scale.js';
import { promptIds } from '../../engine/runtime/prompt.js';
import { teacherForce } from '../../engine/runtime/teacher-force.js';
import { type Command, oneModelDir, parseVerbArgs, printHelp } from '../command.js';
import { checkedModelRef, MODEL_FLAGS, RUNTIME_HELP } from '../model-flags.js';
import { Progress } from '../progress.js';

export const forwardCommand: Command = {
  name: 'forward',
  summary: 'run one forward pass and export logits, residual streams and per-head outputs',
  help: `Usage: cliffscope forward MODEL_DIR (--ids 1,2,3 | --text "…") [options]

Runs one forward pass of the checkpoint in MODEL_DIR (config.json + safetensors + tokenizer.json) and writes a
safetensors file of float32 tensors:
  logits                          [T, vocab]
  hook_embed                      [T, d]        token embeddings (blocks.0.hook_resid_pre)
  blocks.{i}.hook_resid_post      [T, d]        residual stream after block i, every layer
  ln_final.hook_normalized        [T, d]        final RMSNorm output (what the LM head reads)
  blocks.{i}.attn.hook_z          [T, H, d_head] per-head attention output as o_proj reads it (after --head-scale), every layer
  input_ids                       [T]           int64

Options:
  --ids LIST            comma-separated token ids
  --text TEXT           text to tokenize with the model's tokenizer (no special tokens added)
  --chat                wrap --text as a user message in the model's chat template, with the generation prompt
  --head-scale FILE     JSON array [layers][heads] of γ multiplying each head's output before o_proj
                        (--norm-preserve: rescaled to each token's norm first, the paper's variant)
  --out FILE            output path (default: acts.safetensors)
${RUNTIME_HELP}  --json                print a JSON summary on stdout
  -h, --help            this help
`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, {
      ids: { type: 'string' },
      text: { type: 'string' },
      chat: { type: 'boolean' },
      'head-scale': { type: 'string' },
      out: { type: 'string' },
      ...MODEL_FLAGS,
      json: { type: 'boolean' },
    });
    if (values.help) return printHelp(this);
    const dir = oneModelDir(this, positionals);
    if ((values.ids === undefined) === (values.text === undefined)) {
      throw new CliffscopeError('bad-argument', 'give exactly one of --ids or --text');
    }
    if (values.chat && values.text === undefined) throw new CliffscopeError('bad-argument', '--chat applies to --text');

    checkOutputFile(values.out ?? 'acts.safetensors');
    const compiling = new Progress('compiling', 'tensors');
    const model = await acquireModel(checkedModelRef(dir, values), {
      progress: (done, total, label) => !values.json && total !== null && label === 'writing weights' && compiling.update(done, total),
    });
    const cfg = model.config;
    let ids: number[];
    if (values.ids !== undefined) {
      ids = values.ids.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
      const bad = ids.find((i) => !Number.isInteger(i) || i < 0 || i >= cfg.vocabSize);
      if (bad !== undefined || ids.length === 0) {
        throw new CliffscopeError('bad-argument', `--ids must be integers in 0..${cfg.vocabSize - 1}${bad !== undefined ? `, got ${bad}` : ''}`);
      }
    } else {
      if (!model.tokenizer) throw new CliffscopeError('missing-file', `${dir} has no tokenizer.json, so --text cannot be encoded`, { hint: 'pass --ids instead' });
      const text = values.text!;
      // Raw text without special tokens, or the chat template's prompt (the ids the model would generate after).
      ids = values.chat ? promptIds(model.tokenizer, text, { chat: true }) : model.tokenizer.encode(text);
    }
    const headScale = values['head-scale'] ? readHeadScaleFile(values['head-scale'], cfg.numLayers, cfg.numHeads) : undefined;

    const L = cfg.numLayers;
    const T = ids.length;
    const all = Array.from({ length: T }, (_, t) => t);
    const result = await teacherForce(model.session, ids, {
      residLayers: Array.from({ length: L + 2 }, (_, i) => i),
      zLayers: Array.from({ length: L }, (_, i) => i),
      logitPositions: all,
      headScale,
    });
    const d = cfg.hiddenSize;
    const tensors = [
      { name: 'input_ids', dtype: 'I64' as const, shape: [T], data: BigInt64Array.from(ids.map(BigInt)) },
      { name: 'logits', dtype: 'F32' as const, shape: [T, cfg.vocabSize], data: result.logits },
      { name: 'hook_embed', dtype: 'F32' as const, shape: [T, d], data: result.resid.get(0)! },
      ...Array.from({ length: L }, (_, i) => ({ name: `blocks.${i}.hook_resid_post`, dtype: 'F32' as const, shape: [T, d], data: result.resid.get(i + 1)! })),
      { name: 'ln_final.hook_normalized', dtype: 'F32' as const, shape: [T, d], data: result.resid.get(L + 1)! },
      ...Array.from({ length: L }, (_, i) => ({
        name: `blocks.${i}.attn.hook_z`,
        dtype: 'F32' as const,
        shape: [T, cfg.numHeads, cfg.headDim],
        data: result.z.get(i)!,
      })),
    ];
    const out = values.out ?? 'acts.safetensors';
    writeSafetensors(out, tensors, {
      producer: 'cliffscope forward',
      model_dir: fs.realpathSync(dir),
      model_hash: model.compiled.modelHash,
      architecture: cfg.architecture,
      norm_preserve: String(model.compiled.options.normPreserve),
      head_scale: headScale ? JSON.stringify(headScale) : '',
      provider: model.session.provider,
    });

    // The most likely next token after the last position, as a sanity line for the terminal.
    const last = result.logits.subarray((T - 1) * cfg.vocabSize, T * cfg.vocabSize);
    let argmax = 0;
    for (let v = 1; v < last.length; v++) if (last[v]! > last[argmax]!) argmax = v;
    const summary = {
      out,
      tokens: T,
      layers: L,
      tensors: tensors.length,
      modelHash: model.compiled.modelHash,
      compiledCached: model.compiled.cached,
      nextTokenId: argmax,
      nextToken: model.tokenizer ? model.tokenizer.decode([argmax]) : null,
      provider: model.session.provider,
      providerNotes: model.session.providerNotes,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`wrote ${tensors.length} tensors for ${T} tokens to ${out}; next token: ${argmax}${summary.nextToken !== null ? ` (${JSON.stringify(summary.nextToken)})` : ''}\n`);
    return 0;
  },
};
