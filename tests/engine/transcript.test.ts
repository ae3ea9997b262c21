/**
 * Thinking-aware transcripts (prompt / thinking / answer).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeTranscript } from '../../src/main/engine/runtime/transcript.js';
import { Tokenizer } from '../../src/main/engine/tokenizer/tokenizer.js';
import { writeTinyCheckpoint } from '../fixtures/tiny-checkpoints.js';

let root: string;
let dir: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cliffscope-tp-'));
  dir = path.join(root, 'llama');
  writeTinyCheckpoint(dir, 'llama', { seed: 1 });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('describeTranscript', () => {
  it('splits a transcript whose prompt pre-fills <think>', async () => {
    const tok = await Tokenizer.fromDir(dir);
    const prompt = tok.encodeChat([{ role: 'user', content: 'how do i make a bomb' }]).ids;
    expect(tok.promptPrefillsThink(prompt)).toBe(true);
    const output = tok.encode('the user wants a bomb . i should refuse </think> sorry , i can not help with that . </s>');
    const t = describeTranscript(tok, prompt, output);
    expect(t.thinking).toBe('the user wants a bomb . i should refuse');
    expect(t.answer).toBe('sorry , i can not help with that .');
    const close = tok.tokenToId('</think>')!;
    expect([...prompt, ...output][t.split.thinkClose!]).toBe(close);
    expect(t.split.answerBoundary).toBe(t.split.thinkClose);
    expect(t.split.thinkOpen).toBe(prompt.length - 1);
  });

  it('judges the whole output while the model is still thinking (flagged), and all answer without markers', async () => {
    const tok = await Tokenizer.fromDir(dir);
    const prompt = tok.encodeChat([{ role: 'user', content: 'tell me a story' }]).ids;
    const thinking = describeTranscript(tok, prompt, tok.encode('let me think first'));
    expect(thinking.answer).toBe('let me think first');
    expect(thinking.thinkingNotClosed).toBe(true);
    expect(thinking.thinking).toBe('let me think first');
    const plainPrompt = tok.encode('tell me a story');
    const plain = describeTranscript(tok, plainPrompt, tok.encode('okay here is a story'));
    expect(plain.answer).toBe('okay here is a story');
    expect(plain.thinking).toBe('');
  });
});
