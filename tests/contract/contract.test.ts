import { describe, expect, it } from 'vitest';
import {
  ContractError,
  METHODS,
  validateJobEvent,
  validateRequest,
  validateResponse,
  validateResult,
  type AppInfo,
  type ModelInspection,
} from '../../src/shared/contract.js';

const appInfo: AppInfo = {
  name: 'cliffscope',
  version: '0.1.0',
  platform: 'linux',
  arch: 'x64',
  versions: { node: '20.19.0', electron: null, chrome: null },
  onnxruntimeVersion: '1.30.0',
  providers: ['cpu', 'webgpu'],
  unavailableProviders: ['cuda'],
};

const inspection: ModelInspection = {
  architecture: 'Qwen2ForCausalLM',
  family: 'qwen2',
  layers: 24,
  heads: 14,
  kvHeads: 2,
  headDim: 64,
  hidden: 896,
  vocab: 151936,
  dtypes: ['BF16'],
  parameters: 494032768,
  tied: true,
};

/** Run `fn`, expect a ContractError, return it. */
function contractError(fn: () => unknown): ContractError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ContractError);
    return e as ContractError;
  }
  throw new Error('expected a ContractError, nothing was thrown');
}

describe('method table', () => {
  it('lists the methods the engine answers', () => {
    expect(METHODS).toEqual(expect.arrayContaining(['app.info', 'model.inspect', 'generate.run', 'project.open', 'run.start', 'trace.get', 'heads.map', 'sweep.cells']));
    expect(new Set(METHODS).size).toBe(METHODS.length);
  });
});

describe('validateRequest', () => {
  it('accepts app.info with {} or no params', () => {
    expect(validateRequest('app.info', {})).toEqual({ method: 'app.info', params: {} });
    expect(validateRequest('app.info', undefined)).toEqual({ method: 'app.info', params: {} });
  });

  it('accepts model.inspect with a folder and returns typed params', () => {
    const req = validateRequest('model.inspect', { dir: '/models/qwen' });
    expect(req.params.dir).toBe('/models/qwen');
  });

  it('trims the folder path', () => {
    expect(validateRequest('model.inspect', { dir: '  /m  ' }).params.dir).toBe('/m');
  });

  it('narrows the union for a method known only at run time', () => {
    const method: unknown = 'model.inspect';
    const req = validateRequest(method, { dir: '/m' });
    if (req.method !== 'model.inspect') throw new Error('wrong method');
    expect(req.params.dir).toBe('/m');
  });

  it('rejects an unknown method, naming it and the known ones', () => {
    const e = contractError(() => validateRequest('model.delete', {}));
    expect(e.code).toBe('unknown-method');
    expect(e.message).toContain('"model.delete"');
    expect(e.message).toContain('app.info, model.inspect');
  });

  it('rejects a method that is not a string', () => {
    const e = contractError(() => validateRequest(42, {}));
    expect(e.code).toBe('unknown-method');
    expect(e.message).toContain('a number');
  });

  it('does not treat Object.prototype keys as methods', () => {
    expect(contractError(() => validateRequest('toString', {})).code).toBe('unknown-method');
    expect(contractError(() => validateRequest('__proto__', {})).code).toBe('unknown-method');
  });

  it('rejects a wrong type, naming the field', () => {
    const e = contractError(() => validateRequest('model.inspect', { dir: 7 }));
    expect(e.code).toBe('bad-params');
    expect(e.message).toMatch(/^invalid params for model\.inspect: dir: /);
    expect(e.message).toContain('expected string');
    expect(e.issues).toEqual([expect.objectContaining({ path: 'dir' })]);
  });

  it('rejects a missing field, naming it', () => {
    const e = contractError(() => validateRequest('model.inspect', {}));
    expect(e.code).toBe('bad-params');
    expect(e.issues.map((i) => i.path)).toEqual(['dir']);
    expect(e.message).toContain('dir:');
  });

  it('rejects an empty folder path', () => {
    const e = contractError(() => validateRequest('model.inspect', { dir: '   ' }));
    expect(e.message).toContain('dir: must name a model folder');
  });

  it('rejects extra fields, naming each', () => {
    const e = contractError(() => validateRequest('model.inspect', { dir: '/m', force: true, depth: 2 }));
    expect(e.code).toBe('bad-params');
    expect(e.issues).toEqual([
      { path: 'force', message: 'unknown field' },
      { path: 'depth', message: 'unknown field' },
    ]);
    expect(e.message).toContain('force: unknown field');
    expect(e.message).toContain('depth: unknown field');
  });

  it('rejects params on a method that takes none', () => {
    const e = contractError(() => validateRequest('app.info', { verbose: true }));
    expect(e.message).toContain('verbose: unknown field');
  });

  it('rejects params that are not an object', () => {
    for (const params of [null, 'dir', ['/m'], 3]) {
      const e = contractError(() => validateRequest('model.inspect', params));
      expect(e.code).toBe('bad-params');
      expect(e.message).toContain('expected object');
    }
  });
});

describe('validateResult', () => {
  it('accepts well-formed results', () => {
    expect(validateResult('app.info', appInfo)).toEqual(appInfo);
    expect(validateResult('app.info', { ...appInfo, engineVersion: '0.1.0' }).engineVersion).toBe('0.1.0');
    expect(validateResult('model.inspect', inspection)).toEqual(inspection);
  });

  it('names nested fields at fault', () => {
    const e = contractError(() =>
      validateResult('app.info', { ...appInfo, versions: { node: 20, electron: null, chrome: null } }),
    );
    expect(e.code).toBe('bad-result');
    expect(e.message).toMatch(/^invalid result from app\.info: versions\.node: /);
  });

  it('names array elements at fault', () => {
    const e = contractError(() => validateResult('app.info', { ...appInfo, providers: ['cpu', 3] }));
    expect(e.issues.map((i) => i.path)).toEqual(['providers[1]']);
  });

  it('rejects missing, extra and out-of-range fields', () => {
    const { tied: _tied, ...noTied } = inspection;
    expect(contractError(() => validateResult('model.inspect', noTied)).issues.map((i) => i.path)).toEqual(['tied']);
    expect(contractError(() => validateResult('model.inspect', { ...inspection, secret: 'x' })).message).toContain(
      'secret: unknown field',
    );
    expect(contractError(() => validateResult('model.inspect', { ...inspection, layers: 0 })).message).toContain(
      'layers:',
    );
    expect(contractError(() => validateResult('model.inspect', { ...inspection, heads: 1.5 })).message).toContain(
      'heads:',
    );
    expect(contractError(() => validateResult('model.inspect', { ...inspection, family: 'gpt2' })).message).toContain(
      'family:',
    );
  });

  it('rejects a result for an unknown method', () => {
    expect(contractError(() => validateResult('nope' as 'app.info', appInfo)).code).toBe('unknown-method');
  });
});

describe('response envelope', () => {
  it('accepts results and errors', () => {
    expect(validateResponse({ ok: true, result: 1 })).toEqual({ ok: true, result: 1 });
    const err = { ok: false, error: { code: 'missing-file', message: 'x: not found', file: 'x', hint: 'fix it' } };
    expect(validateResponse(err)).toEqual(err);
  });

  it('rejects malformed envelopes', () => {
    expect(contractError(() => validateResponse({ ok: 'yes' })).code).toBe('bad-message');
    expect(contractError(() => validateResponse({ ok: false, error: { message: 'x' } })).message).toContain(
      'error.code',
    );
    expect(contractError(() => validateResponse({ ok: true, result: 1, extra: 2 })).message).toContain(
      'extra: unknown field',
    );
  });
});

describe('job events', () => {
  const at = 1_700_000_000_000;

  it('accepts each kind', () => {
    const events = [
      { jobId: 'j1', at, kind: 'progress', done: 3, total: 28, label: 'layer 3/28' },
      { jobId: 'j1', at, kind: 'progress', done: 0, total: null },
      { jobId: 'j1', at, kind: 'log', level: 'info', message: 'compiling' },
      { jobId: 'j1', at, kind: 'done', result: { ok: 1 } },
      { jobId: 'j1', at, kind: 'done' },
      { jobId: 'j1', at, kind: 'error', error: { code: 'runtime', message: 'out of memory' } },
    ];
    for (const ev of events) expect(validateJobEvent(ev)).toEqual(ev);
  });

  it('rejects unknown kinds and malformed fields, naming them', () => {
    expect(contractError(() => validateJobEvent({ jobId: 'j', at, kind: 'paused' })).message).toContain('kind');
    expect(
      contractError(() => validateJobEvent({ jobId: 'j', at, kind: 'progress', done: 'half', total: 2 })).message,
    ).toContain('done:');
    expect(
      contractError(() => validateJobEvent({ jobId: '', at, kind: 'log', level: 'info', message: 'm' })).message,
    ).toContain('jobId:');
    expect(
      contractError(() => validateJobEvent({ jobId: 'j', at, kind: 'log', level: 'loud', message: 'm' })).message,
    ).toContain('level:');
    expect(contractError(() => validateJobEvent({ jobId: 'j', kind: 'done' })).message).toContain('at:');
    expect(
      contractError(() => validateJobEvent({ jobId: 'j', at, kind: 'done', percent: 100 })).message,
    ).toContain('percent: unknown field');
  });
});
