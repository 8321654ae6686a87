// Tokenization with tokenizer.json through @huggingface/tokenizers (pure JS, no network).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelFolderError } from '../core/errors';
import { readGgufModel } from '../core/gguf/reader';
import { ggufTokenizerJson } from '../core/gguf/tokenizer';
import { isGgufTarget } from './ggufCheckpoint';

export interface Tokenized {
  ids: number[];
  /** Tokens as the model sees them (byte-level BPE shows a leading space as Ġ). */
  tokens: string[];
}

/**
 * A tokenizer for the model in `folder` (tokenizer.json, with tokenizer_config.json when present); for a
 * GGUF file, or a GGUF folder without tokenizer.json, the one rebuilt from its tokenizer.ggml.* metadata.
 */
export async function loadTokenizer(folder: string): Promise<Tokenizer> {
  const file = path.join(folder, 'tokenizer.json');
  if (!fs.existsSync(file) && isGgufTarget(folder)) {
    const model = readGgufModel(folder);
    const { tokenizer, config } = ggufTokenizerJson(model.metadata, model.parts[0]?.file);
    return new Tokenizer(tokenizer, config);
  }
  if (!fs.existsSync(file)) throw new ModelFolderError('no-tokenizer', `${folder} has no tokenizer.json.`, file);
  const json = JSON.parse(await fs.promises.readFile(file, 'utf8')) as object;
  const configFile = path.join(folder, 'tokenizer_config.json');
  const config = fs.existsSync(configFile) ? (JSON.parse(await fs.promises.readFile(configFile, 'utf8')) as object) : {};
  return new Tokenizer(json, config);
}

/** Encodes `text` without special tokens (the trace shows exactly the selected text). */
export function encodeText(tokenizer: Tokenizer, text: string): Tokenized {
  const enc = tokenizer.encode(text, { add_special_tokens: false });
  return { ids: enc.ids, tokens: enc.tokens };
}
