/**
 * `--kv-cache` reaches the model's compile options as `precision.kvCache` (tests/precision/kv-cache-storage.test.ts
 * checks what each storage computes), and a value that is not a storage type is refused by ModelRef's schema.
 */
import { describe, expect, it } from 'vitest';
import { modelRefFromFlags } from '../../src/main/cli/model-flags.js';
import { ModelRef } from '../../src/shared/values.js';

describe('--kv-cache', () => {
  it('sets precision.kvCache, with or without other precision flags', () => {
    expect(ModelRef.parse(modelRefFromFlags('/m', { 'kv-cache': 'int8' })).precision).toEqual({ kvCache: 'int8' });
    expect(ModelRef.parse(modelRefFromFlags('/m', { 'kv-cache': 'float16', weights: 'int4' })).precision).toEqual({ kvCache: 'float16', weights: 'int4' });
    expect(ModelRef.parse(modelRefFromFlags('/m', {})).precision).toBeUndefined();
  });

  it('refuses a storage type it does not have', () => {
    const parsed = ModelRef.safeParse(modelRefFromFlags('/m', { 'kv-cache': 'int4' }));
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.path).toEqual(['precision', 'kvCache']);
  });
});
