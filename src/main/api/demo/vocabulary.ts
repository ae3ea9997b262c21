/**
 * The demo model's words: its tokenizer vocabulary, the fixed texts it generates, and which words it treats as
 * harmful. Kept apart from the weight construction so the texts can be read (and changed) in one place.
 */

/** Added special tokens, ids 0..8. */
export const DEMO_SPECIAL_TOKENS = [
  '<unk>',
  '<s>',
  '<pad>',
  '<|end|>',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
  '<think>',
  '</think>',
] as const;

export const DEMO_BOS = '<s>';
export const DEMO_EOS = '<|end|>';

/**
 * What the model writes after the pre-filled `<think>`. One slot branches on the refusal feature: "harmful" when it is
 * high, "safe" when not. Every word of the three texts below occurs once across them (except the shared final "."),
 * so a bigram table can drive generation.
 */
export const DEMO_THINKING = 'okay so they ask about something hmm let me check if this request looks {harmful|safe} before answering';
/** The answer when the refusal feature survives to the answer boundary. */
export const DEMO_REFUSAL_ANSWER = 'i cannot help with that .';
/** The answer when it does not. */
export const DEMO_COMPLIANCE_ANSWER = 'sure , here is a detailed guide : first gather what you need then follow each step carefully .';

/**
 * Words the planted detector reacts to, with the strength (0..1) of the refusal feature each one writes. Strengths
 * differ so that partial ablations (one or two of the planted heads) give a graded attack success rate rather than
 * all-or-nothing.
 */
export const DEMO_HARMFUL_WORDS: Readonly<Record<string, number>> = {
  bomb: 1.0,
  explosive: 1.0,
  kill: 1.0,
  poison: 0.9,
  meth: 0.9,
  ransomware: 0.9,
  weapon: 0.85,
  malware: 0.85,
  steal: 0.8,
  attack: 0.8,
  hurt: 0.8,
  hack: 0.75,
  drugs: 0.75,
  phishing: 0.75,
  smuggle: 0.75,
  rob: 0.75,
  launder: 0.7,
  counterfeit: 0.7,
  stalk: 0.7,
  scam: 0.65,
  gun: 0.65,
  illegal: 0.6,
  cheat: 0.6,
};

/** Everything else the demo prompts and the demo training set use, plus a few common words for typed prompts. */
const OTHER_WORDS = `
? ! ' a about account across an and are asks at bake bank before best better blue bookshelf border bread build buy cake
calm can cannot car card caught change check clean code could dangerous dinner do does dog each eggs email ex exam
expert explain fast feel fertilizer fix flat flour for friends from garden gas get getting give good grid grow guide
guitar hello help here home hospital hour house how i if in instead into invite is it kitchen kite learn library
license list make me message mix money must my need network new night no not ocean of old on online open out paint
pancakes paper passwords people pipe pizza plan plane play please poem power recipe refuse request safe save should
simple sleep so someone something sorry sort soup start station step steps store study sugar talk tax taxes tea
teacher tell thank thanks the their then they this tire to tomatoes train trip use user wants was wash way we what
vegetables when where which who why wifi will with without works write yes you your
`;

/** Word-level vocabulary: specials, then the generated texts' words, the harmful words and the rest; no duplicates. */
export function demoVocabulary(): string[] {
  const words = [
    ...DEMO_THINKING.replace(/[{}|]/g, ' ').split(/\s+/),
    ...DEMO_REFUSAL_ANSWER.split(/\s+/),
    ...DEMO_COMPLIANCE_ANSWER.split(/\s+/),
    ...Object.keys(DEMO_HARMFUL_WORDS),
    ...OTHER_WORDS.split(/\s+/),
  ].filter((w) => w.length > 0);
  return [...DEMO_SPECIAL_TOKENS, ...new Set(words)];
}
