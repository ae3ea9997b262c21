/**
 * A word-level tokenizer.json (lower-casing, whitespace pre-tokenizer, the special tokens as added tokens first),
 * the format the demo model and the test fixtures ship. `vocab` holds every token, specials included, in id order.
 */
export function wordLevelTokenizerJson(specialTokens: readonly string[], vocab: readonly string[]): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content) => ({
      id: vocab.indexOf(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(vocab.map((t, i) => [t, i])), unk_token: '<unk>' },
  };
}
