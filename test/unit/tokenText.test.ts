import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeTrace } from '../../src/core/routing/analyze';
import { traceToMarkdown } from '../../src/core/routing/markdown';
import { detectTokenStyle, tokenStyleOfTokenizerJson, tokenTexts, visibleMarks } from '../../src/core/routing/tokenText';
import { rawFromGolden } from './util/traceGolden';
import { readJson, TINY, tinyWithGolden } from './util/fixtures';

interface GoldenPrompt { text: string; tokens: string[]; input_ids: number[] }

describe('tokens as text (trace view, reports)', () => {
  for (const name of tinyWithGolden()) {
    it(`${name}: the golden tokens of transformers decode back to every prompt, labels carry no vocabulary spelling`, () => {
      const tokenizer = readJson<{ model: { vocab: Record<string, number> } }>(path.join(TINY, name, 'tokenizer.json'));
      const style = tokenStyleOfTokenizerJson(tokenizer);
      assert.equal(style, 'byte-level', 'the fixtures use byte-level BPE (decoder ByteLevel)');
      // The whole vocabulary is written in the byte-level alphabet.
      assert.equal(detectTokenStyle(Object.keys(tokenizer.model.vocab)), 'byte-level');
      const prompts = readJson<{ prompts: GoldenPrompt[] }>(path.join(TINY, name, 'golden.json')).prompts;
      for (const p of prompts) {
        assert.equal(detectTokenStyle(p.tokens), 'byte-level');
        const out = tokenTexts(p.tokens, style);
        assert.equal(out.length, p.tokens.length);
        assert.equal(out.map((t) => t.text).join(''), p.text, 'concatenated token texts = the prompt');
        for (const [i, t] of out.entries()) {
          assert.ok(t.label.length > 0, `token ${i} has a label`);
          assert.doesNotMatch(t.label, /[ĠĊĉ]/, `token ${i} (${p.tokens[i]}) label ${t.label}`);
          assert.doesNotMatch(t.label.replace(/‹[0-9A-F ]+›/g, ''), /[ \n\t]/, 'whitespace is shown as marks in labels');
        }
      }
    });
  }

  it('marks spaces, line feeds and tabs; keeps split characters on the token that completes them', () => {
    const p = readJson<{ prompts: GoldenPrompt[] }>(path.join(TINY, 'mixtral', 'golden.json')).prompts;
    const code = p.find((x) => x.text.includes('\n'))!;
    const out = tokenTexts(code.tokens);
    const nl = code.tokens.findIndex((t) => t.includes('Ċ'));
    assert.ok(nl >= 0 && out[nl]!.label.includes('↵') && out[nl]!.text.includes('\n'));
    const router = tokenTexts(['Ġrouter']);
    assert.deepEqual(router, [{ text: ' router', label: '␣router' }]);
    // "😀" is F0 9F 98 80; byte-level spells those bytes ð Ł ĺ Ģ (bytes_to_unicode of 0xF0, 0x9F, 0x98, 0x80).
    const emoji = tokenTexts(['ð', 'Ł', 'ĺ', 'Ģ'], 'byte-level');
    assert.deepEqual(emoji.map((t) => t.text), ['', '', '', '😀']);
    assert.equal(emoji[0]!.label, '‹F0›');
    assert.equal(emoji[1]!.label, '‹F0 9F›');
    assert.equal(emoji[3]!.label, '😀');
    assert.equal(visibleMarks('a b\tc\r\n\u0000'), 'a␣b⇥c␍↵␀');
  });

  it('SentencePiece: "▁" is a space (none before the first word), <0xNN> pieces are bytes', () => {
    const pieces = ['▁Hello', '▁wor', 'ld', '<0x0A>', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>', '▁ok'];
    assert.equal(detectTokenStyle(pieces), 'sentencepiece');
    const out = tokenTexts(pieces);
    assert.equal(out.map((t) => t.text).join(''), 'Hello world\n😀 ok');
    assert.deepEqual(out.map((t) => t.label), ['Hello', '␣wor', 'ld', '↵', '‹F0›', '‹F0 9F›', '‹F0 9F 98›', '😀', '␣ok']);
    assert.equal(tokenStyleOfTokenizerJson({ decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }] } }), 'sentencepiece');
    assert.equal(tokenStyleOfTokenizerJson({ decoder: { type: 'Metaspace', replacement: '▁' } }), 'sentencepiece');
  });

  it('the Markdown trace report lists tokens as text, not vocabulary strings', () => {
    const raw = rawFromGolden('mixtral', 1);
    const md = traceToMarkdown(raw, analyzeTrace(raw));
    assert.doesNotMatch(md, /[ĠĊ]/);
    // Token 3 of "def forward(self, x):" is "Ġf" in the tiny vocabulary (golden.json).
    assert.equal(raw.tokens[3], 'Ġf');
    assert.match(md, /^\| 3 \| ␣f \|/m);
    assert.match(md, /↵/, 'the line feed of the code prompt is a visible mark');
  });

  it('plain tokens (no vocabulary spelling) stay as they are', () => {
    assert.equal(detectTokenStyle(['The', ' router', '😀']), 'plain');
    assert.deepEqual(tokenTexts(['The', ' router']).map((t) => t.label), ['The', '␣router']);
    assert.ok(fs.existsSync(path.join(TINY, 'mixtral', 'tokenizer.json')));
  });
});
