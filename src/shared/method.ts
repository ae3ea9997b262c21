/**
 * The paper's constants (METHOD.md) that both the engine's analysis and the run kinds' defaults use, so a form, a
 * CLI default and the maths never disagree. Pure.
 */

/** The ablation sweep's fractions of all L·H heads (METHOD.md §4); 0 is the unablated baseline. */
export const ABLATION_FRACTIONS: readonly number[] = Object.freeze([0, 0.005, 0.015, 0.03, 0.1]);
/** The sweep's γ values: removed, almost removed, halved. */
export const ABLATION_GAMMAS: readonly number[] = Object.freeze([0, 0.01, 0.5]);
/** Cliff-as-a-Judge keeps the top 1.7 % by MS (METHOD.md §6). */
export const PAPER_SELECT_FRACTION = 0.017;
