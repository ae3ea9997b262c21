/**
 * A bench target: a measured ratio against its threshold, judged on the best repetition of each side (other processes
 * only ever slow a run down) and, beside it, on the medians.
 */

export interface Target {
  name: string;
  description: string;
  /** measured <= threshold, or measured >= threshold. */
  comparison: '<=' | '>=';
  threshold: number;
  /** From the best repetition of each side. */
  measured: number | null;
  pass: boolean | null;
  /** The same from the medians of the repetitions. */
  measuredOnMedians: number | null;
  passOnMedians: boolean | null;
  detail: string;
}

/** A target; a measurement that is missing or not finite gets no verdict (null), never a pass. */
export function target(
  name: string,
  description: string,
  comparison: '<=' | '>=',
  threshold: number,
  measured: number | null,
  measuredOnMedians: number | null,
  detail: string,
): Target {
  const judge = (x: number | null) => (x === null || !Number.isFinite(x) ? null : comparison === '<=' ? x <= threshold : x >= threshold);
  const clean = (x: number | null) => (x === null || !Number.isFinite(x) ? null : x);
  return { name, description, comparison, threshold, measured: clean(measured), pass: judge(measured), measuredOnMedians: clean(measuredOnMedians), passOnMedians: judge(measuredOnMedians), detail };
}
