/**
 * A Hugging Face checkpoint folder (config.json + safetensors weights + optional generation_config.json), opened and
 * checked against what its config promises, before anything is compiled from it. Only headers are read here.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CliffscopeError } from '../errors.js';
import { jsonSyntaxProblem } from '../io/json-syntax.js';
import { readUntrustedText } from '../io/untrusted-file.js';
import { expectedTensors, parseModelConfig, tokenIds, type ModelConfig } from './config.js';
import { readSafetensorsHeader, type SafetensorsDtype, type TensorInfo } from './safetensors.js';

export interface Checkpoint {
  /** Absolute path of the checkpoint folder. */
  dir: string;
  config: ModelConfig;
  rawConfig: Record<string, unknown>;
  /** Every tensor found in the weight files, by HF name. The ones `expectedTensors(config)` lists are validated. */
  tensors: Map<string, TensorInfo>;
  /** Absolute paths of the safetensors files, sorted by file name. */
  files: string[];
  generation: { eosTokenIds: number[]; bosTokenId: number | null; raw: Record<string, unknown> | null };
}

const WEIGHT_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16'];
const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

/** config.json and friends are kilobytes; the checkpoint is untrusted, so they are read bounded (readUntrustedText). */
const MAX_JSON_FILE_BYTES = 64 * 1024 * 1024;

function readJsonObject(file: string): Record<string, unknown> {
  const text = readUntrustedText(file, { maxBytes: MAX_JSON_FILE_BYTES, what: 'checkpoint file', code: 'bad-json' });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliffscopeError('bad-json', `${file}: not valid JSON: ${jsonSyntaxProblem(text)}`, {
      file,
      hint: 'fix or re-download the file',
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CliffscopeError('bad-json', `${file}: expected a JSON object`, { file });
  }
  return parsed as Record<string, unknown>;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Which safetensors files hold the weights, plus the index's tensor → file map when there is one. */
function locateWeights(dir: string): { files: string[]; weightMap: Map<string, string> | null; index: string | null } {
  const single = path.join(dir, SINGLE_FILE);
  if (isFile(single)) return { files: [single], weightMap: null, index: null };

  const index = path.join(dir, INDEX_FILE);
  if (isFile(index)) {
    const raw = readJsonObject(index);
    const wm = raw.weight_map;
    if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
      throw new CliffscopeError('bad-json', `${index}: "weight_map" must be an object of tensor name → shard file`, {
        file: index,
      });
    }
    const weightMap = new Map<string, string>();
    for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
      // Shards live next to the index; refuse anything that would point elsewhere.
      if (typeof shard !== 'string' || shard !== path.basename(shard)) {
        throw new CliffscopeError('bad-json', `${index}: weight_map["${name}"] must be a file name, got ${JSON.stringify(shard)}`, {
          file: index,
        });
      }
      weightMap.set(name, path.join(dir, shard));
    }
    const files = [...new Set(weightMap.values())];
    for (const f of files) {
      if (!isFile(f)) {
        throw new CliffscopeError('missing-file', `${f}: shard listed in ${index} does not exist`, {
          file: f,
          hint: 'the download is incomplete; fetch every model-*-of-*.safetensors shard',
        });
      }
    }
    return { files, weightMap, index };
  }

  const entries = fs.readdirSync(dir);
  const any = entries.filter((e) => e.endsWith('.safetensors') && isFile(path.join(dir, e)));
  if (any.length > 0) return { files: any.map((e) => path.join(dir, e)), weightMap: null, index: null };

  const other = entries.filter((e) => /\.(bin|pth|pt|ckpt|gguf|h5|msgpack)$/.test(e));
  throw new CliffscopeError('missing-file', `${dir}: no ${SINGLE_FILE}, ${INDEX_FILE} or other *.safetensors weights`, {
    file: dir,
    hint:
      (other.length ? `found ${other.join(', ')}, which Cliffscope does not read. ` : '') +
      'Cliffscope needs safetensors weights; convert with transformers: ' +
      'AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out_dir, safe_serialization=True)',
  });
}

function readGeneration(dir: string, config: ModelConfig): Checkpoint['generation'] {
  const file = path.join(dir, 'generation_config.json');
  if (!isFile(file)) return { eosTokenIds: [...config.eosTokenIds], bosTokenId: config.bosTokenId, raw: null };
  const raw = readJsonObject(file);
  const eos = tokenIds(raw.eos_token_id, 'eos_token_id', file, config.vocabSize);
  const bos = tokenIds(raw.bos_token_id, 'bos_token_id', file, config.vocabSize)[0];
  return {
    eosTokenIds: eos.length > 0 ? eos : [...config.eosTokenIds],
    bosTokenId: bos ?? config.bosTokenId,
    raw,
  };
}

const LAYER_TENSOR = /^model\.layers\.(\d+)\./;

/**
 * The number of layers must agree with the weights before anything is built per layer: a config.json claiming
 * millions of layers would otherwise cost minutes and gigabytes before the first missing tensor is noticed, and one
 * claiming fewer layers than the weights hold would silently run a truncated model.
 */
function checkLayerCount(config: ModelConfig, tensors: Map<string, TensorInfo>, configPath: string, files: string[]): void {
  // A loop, not Math.max(...): a hostile header may name hundreds of thousands of layers.
  let inWeights = 0;
  for (const name of tensors.keys()) {
    const m = LAYER_TENSOR.exec(name);
    if (m) inWeights = Math.max(inWeights, Number(m[1]) + 1);
  }
  if (inWeights === config.numLayers) return;
  const where = files.length === 1 ? files[0]! : path.dirname(files[0] ?? configPath);
  if (inWeights > config.numLayers) {
    throw new CliffscopeError(
      'shape-mismatch',
      `${configPath}: num_hidden_layers is ${config.numLayers}, but the weights hold ${inWeights} layers (model.layers.0 to model.layers.${inWeights - 1}) in ${where}`,
      { file: configPath, hint: 'the layers beyond num_hidden_layers would be silently ignored; config.json and the weights are from different models' },
    );
  }
  throw new CliffscopeError(
    'missing-tensor',
    `${configPath}: num_hidden_layers is ${config.numLayers}, but the weights hold only ${inWeights} layer${inWeights === 1 ? '' : 's'} in ${where}`,
    { file: configPath, hint: 'config.json and the weights are from different models, or the download is incomplete' },
  );
}

/** Open a checkpoint folder and check that its weights match its config. Throws CliffscopeError on any problem. */
export function openCheckpoint(dir: string): Checkpoint {
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new CliffscopeError('missing-file', `${abs}: checkpoint folder does not exist`, { file: abs });
  }
  if (!st.isDirectory()) {
    throw new CliffscopeError('bad-argument', `${abs}: is a file, not a checkpoint folder`, {
      file: abs,
      hint: 'pass the folder that holds config.json and the *.safetensors weights',
    });
  }

  const configPath = path.join(abs, 'config.json');
  if (!isFile(configPath)) {
    throw new CliffscopeError('missing-file', `${configPath}: config.json not found in checkpoint folder`, {
      file: configPath,
      hint: 'a Hugging Face checkpoint folder must contain config.json next to its weights',
    });
  }
  const rawConfig = readJsonObject(configPath);
  const config = parseModelConfig(rawConfig, configPath);

  const { files, weightMap, index } = locateWeights(abs);
  files.sort((a, b) => (path.basename(a) < path.basename(b) ? -1 : path.basename(a) > path.basename(b) ? 1 : 0));
  const tensors = new Map<string, TensorInfo>();
  for (const file of files) {
    for (const t of readSafetensorsHeader(file).tensors) {
      if (weightMap) {
        const mapped = weightMap.get(t.name);
        // Unlisted tensors are never loaded by transformers either; a tensor mapped to another shard is ambiguous.
        if (mapped === undefined) continue;
        if (mapped !== file) {
          throw new CliffscopeError(
            'bad-safetensors',
            `${file}: holds tensor "${t.name}", but ${index} maps it to ${path.basename(mapped)}`,
            { file, hint: 'the shards and the index come from different exports; re-download them together' },
          );
        }
      }
      const seen = tensors.get(t.name);
      if (seen) {
        throw new CliffscopeError(
          'bad-safetensors',
          `tensor "${t.name}" appears in both ${seen.file} and ${file}`,
          { file, hint: 'remove stray *.safetensors files from the checkpoint folder' },
        );
      }
      tensors.set(t.name, t);
    }
  }
  if (weightMap) {
    for (const [name, shard] of weightMap) {
      if (!tensors.has(name)) {
        throw new CliffscopeError('missing-tensor', `${shard}: has no tensor "${name}", which ${index} says it holds`, {
          file: shard,
          hint: 'the shard is from a different export or is damaged; re-download it',
        });
      }
    }
  }

  checkLayerCount(config, tensors, configPath, files);
  for (const [name, shape] of expectedTensors(config)) {
    const t = tensors.get(name);
    if (!t) {
      throw new CliffscopeError('missing-tensor', `tensor "${name}" required by config.json is in none of: ${files.join(', ')}`, {
        file: files.length === 1 ? files[0] : abs,
        hint: `config.json describes a ${config.architecture}; the weights do not match it (wrong or partial checkpoint?)`,
      });
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new CliffscopeError(
        'shape-mismatch',
        `${t.file}: tensor "${name}" has shape ${shapeText(t.shape)}, but config.json implies ${shapeText(shape)}`,
        {
          file: t.file,
          hint:
            `config.json: hidden_size=${config.hiddenSize}, intermediate_size=${config.intermediateSize}, ` +
            `num_attention_heads=${config.numHeads}, num_key_value_heads=${config.numKvHeads}, head_dim=${config.headDim}, ` +
            `vocab_size=${config.vocabSize}; config and weights are from different models`,
        },
      );
    }
    if (!WEIGHT_DTYPES.includes(t.dtype)) {
      throw new CliffscopeError(
        'unsupported-dtype',
        `${t.file}: weight "${name}" is ${t.dtype}; weights must be F32, F16 or BF16`,
        { file: t.file, hint: 'quantised or integer weights are not supported; use an unquantised checkpoint' },
      );
    }
  }

  return { dir: abs, config, rawConfig, tensors, files, generation: readGeneration(abs, config) };
}

// ---------------------------------------------------------------------------------------------------------------

interface FileStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

interface HashMemo {
  version: 1;
  /** Keyed by the checkpoint folder's real path; valid only while every file's stamp is unchanged. */
  entries: Record<string, { files: FileStamp[]; hash: string }>;
}

function loadMemo(file: string): HashMemo {
  try {
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as HashMemo;
    if (m && m.version === 1 && typeof m.entries === 'object' && m.entries !== null) return m;
  } catch {
    // Missing or unreadable memo: start a new one; it is only a cache.
  }
  return { version: 1, entries: {} };
}

function saveMemo(file: string, memo: HashMemo): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(memo, null, 1));
  fs.renameSync(tmp, file);
}

const sameStamps = (a: FileStamp[], b: FileStamp[]) =>
  a.length === b.length && a.every((x, i) => x.path === b[i]!.path && x.size === b[i]!.size && x.mtimeMs === b[i]!.mtimeMs);

/**
 * sha256 (hex) of config.json's bytes followed by every safetensors file's bytes, files in name order. With
 * `cacheFile`, the result is memoised per folder and reused while no file's real path, size or mtime changes.
 */
export async function checkpointHash(ckpt: Checkpoint, opts: { cacheFile?: string } = {}): Promise<string> {
  const files = [path.join(ckpt.dir, 'config.json'), ...ckpt.files];
  const stamps: FileStamp[] = files.map((f) => {
    const real = fs.realpathSync(f);
    const st = fs.statSync(real);
    return { path: real, size: st.size, mtimeMs: st.mtimeMs };
  });
  const key = fs.realpathSync(ckpt.dir);

  const hit = opts.cacheFile ? loadMemo(opts.cacheFile).entries[key] : undefined;
  if (hit && typeof hit.hash === 'string' && Array.isArray(hit.files) && sameStamps(hit.files, stamps)) return hit.hash;

  const h = createHash('sha256');
  for (const s of stamps) {
    for await (const chunk of fs.createReadStream(s.path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  }
  const hash = h.digest('hex');

  if (opts.cacheFile) {
    // Re-read first: hashing can take minutes, and another process may have added entries meanwhile.
    const latest = loadMemo(opts.cacheFile);
    latest.entries[key] = { files: stamps, hash };
    saveMemo(opts.cacheFile, latest);
  }
  return hash;
}
