/**
 * Attention heads and γ (head-scale) matrices, shared by the engine, every face and the renderer. A head is named by
 * its block index `layer` (TransformerLens `blocks.{layer}.attn.hook_z`) and its `head`; a γ matrix is
 * `[layers][heads]` (1 = unchanged, 0 = removed), the one shape the API, the CLI's `--head-scale` files and the
 * stored run configs use. Pure: no Node, no DOM.
 */

export interface HeadRef {
  /** Block index, 0..L-1. */
  layer: number;
  head: number;
}

/** The paper's name for a head: L1H5. */
export function headLabel(h: HeadRef): string {
  return `L${h.layer}H${h.head}`;
}

export function headKey(h: HeadRef): string {
  return `${h.layer}:${h.head}`;
}

/**
 * Heads typed by hand: "L1H5, L2H2" or "1:5 2:2" (any separator of commas, spaces, semicolons). Returns the heads
 * in order without duplicates, or the first token that is not a head. `layers`/`heads` bound them when given.
 */
export function parseHeads(text: string, bounds?: { layers: number; heads: number }): { heads: HeadRef[]; error: string | null } {
  const heads: HeadRef[] = [];
  const seen = new Set<string>();
  for (const token of text.split(/[\s,;]+/).filter(Boolean)) {
    const m = /^L(\d+)H(\d+)$/i.exec(token) ?? /^(\d+):(\d+)$/.exec(token);
    if (!m) return { heads, error: `"${token}" is not a head (write L1H5 or 1:5)` };
    const h = { layer: Number(m[1]), head: Number(m[2]) };
    if (bounds && (h.layer >= bounds.layers || h.head >= bounds.heads)) {
      return { heads, error: `${headLabel(h)} is outside the model's ${bounds.layers} layers × ${bounds.heads} heads` };
    }
    if (seen.has(headKey(h))) continue;
    seen.add(headKey(h));
    heads.push(h);
  }
  return { heads, error: null };
}

/**
 * The one builder of γ matrices: `[layers][headsPerLayer]` of ones with `gamma` on the listed heads (docs/METHOD.md §4).
 * A head outside the model or a non-finite γ is a RangeError (callers check user input before; the engine wraps
 * this with its own error codes).
 */
export function headScaleMatrix(heads: Iterable<HeadRef>, gamma: number, layers: number, headsPerLayer: number): number[][] {
  if (!Number.isFinite(gamma)) throw new RangeError(`gamma must be a finite number, got ${gamma}`);
  const m = Array.from({ length: layers }, () => new Array<number>(headsPerLayer).fill(1));
  for (const h of heads) {
    if (!(Number.isInteger(h.layer) && h.layer >= 0 && h.layer < layers && Number.isInteger(h.head) && h.head >= 0 && h.head < headsPerLayer)) {
      throw new RangeError(`head ${headLabel(h)} is outside a model with ${layers} layers × ${headsPerLayer} heads`);
    }
    m[h.layer]![h.head] = gamma;
  }
  return m;
}
