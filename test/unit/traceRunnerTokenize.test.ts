import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { encodeText, loadTokenizer } from '../../src/engine/tokenize';
import { readJson, TINY, tinyWithGolden } from './util/fixtures';

interface GoldenPrompts {
  prompts: { text: string; input_ids: number[]; tokens: string[] }[];
}

describe('trace tokenizer (tokenizer.json via @huggingface/tokenizers)', () => {
  for (const folder of tinyWithGolden()) {
    it(`${folder}: ids and tokens of every golden prompt, no special tokens`, async () => {
      const tok = await loadTokenizer(path.join(TINY, folder));
      const golden = readJson<GoldenPrompts>(path.join(TINY, folder, 'golden.json'));
      assert.ok(golden.prompts.length > 0);
      for (const p of golden.prompts) {
        const got = encodeText(tok, p.text);
        assert.deepEqual(got.ids, p.input_ids, p.text);
        assert.deepEqual(got.tokens, p.tokens, p.text);
      }
    });
  }
});
