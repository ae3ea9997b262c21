export { Tokenizer } from './tokenizer.js';
export type { ChatMessage, ChatRole, ChatTemplateOptions, ThinkMarker, ThinkMarkers, TranscriptSplit } from './tokenizer.js';
export { THINK_MARKER_PAIRS, splitTranscriptIds } from './think.js';
