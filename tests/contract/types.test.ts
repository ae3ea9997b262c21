/** Compile-time checks of the contract's types (checked by `tsc`; the runtime assertions are trivial). */
import { describe, expectTypeOf, it } from 'vitest';
import type { ApiClient, ParamsOf, ResultOf } from '../../src/shared/contract.js';

describe('ApiClient type', () => {
  it('makes params optional only for methods that need none', () => {
    expectTypeOf<ApiClient['app.info']>().toBeCallableWith();
    expectTypeOf<ApiClient['app.info']>().toBeCallableWith({});
    expectTypeOf<ApiClient['model.inspect']>().toBeCallableWith({ dir: '/m' });
    // @ts-expect-error model.inspect needs a folder
    expectTypeOf<ApiClient['model.inspect']>().toBeCallableWith();
    expectTypeOf<ApiClient['model.inspect']>().parameters.toEqualTypeOf<[params: { dir: string }]>();
  });

  it('returns each method’s result type', () => {
    expectTypeOf<ReturnType<ApiClient['model.inspect']>>().resolves.toEqualTypeOf<ResultOf<'model.inspect'>>();
    expectTypeOf<ResultOf<'app.info'>['providers']>().toEqualTypeOf<string[]>();
    expectTypeOf<ParamsOf<'model.inspect'>>().toEqualTypeOf<{ dir: string }>();
  });
});
