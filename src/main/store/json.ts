/** JSON in TEXT columns: written with sorted keys, so equal values are equal text (and compare in SQL). */

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

/** A typed array of numbers (Float32Array, Int32Array, …): stored as a plain JSON list. */
export function isNumberArray(v: unknown): v is ArrayLike<number> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isNumberArray(v)) return Array.from(v); // typed arrays as lists
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const out: Record<string, unknown> = {};
    // defineProperty: a key may be "__proto__" (a dataset column), which plain assignment would swallow.
    for (const k of Object.keys(v).sort()) {
      Object.defineProperty(out, k, { value: sortKeys((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (text === null || text === undefined) return fallback;
  return JSON.parse(text) as T;
}
