import { GgufError } from '../errors';
import type { GgufValue } from './types';

/**
 * A Hugging Face tokenizer.json (plus the tokenizer_config.json keys it needs) rebuilt from a
 * GGUF's `tokenizer.ggml.*` metadata, for @huggingface/tokenizers. llama.cpp's converter
 * (gguf-py/gguf/vocab.py, convert_hf_to_gguf.py) stores byte-level BPE ("gpt2") as the tokens in id
 * order, the merges as "left right" strings, a token_type per token (1 normal, 3 control, 4
 * user-defined) and a pre-tokenizer name (`tokenizer.ggml.pre`) whose regex lives in llama-vocab.cpp.
 */

/** llama_token_type (llama.h): CONTROL and USER_DEFINED tokens are added tokens. */
const CONTROL = 3;
const USER_DEFINED = 4;

/**
 * Pre-tokenizer regexes by `tokenizer.ggml.pre` (llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_*), for the
 * byte-level BPE vocabularies whose split is one regex. The GPT-2 regex is ByteLevel's own.
 */
const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const PRE_REGEX: Record<string, string | null> = {
  default: null,
  'gpt-2': null,
  gpt2: null,
  'llama-bpe': LLAMA3_REGEX,
  llama3: LLAMA3_REGEX,
  dbrx: LLAMA3_REGEX,
  'smaug-bpe': LLAMA3_REGEX,
  qwen2: QWEN2_REGEX,
};

function strings(v: GgufValue | undefined, key: string, file: string): string[] {
  if (!v || typeof v !== 'object' || (v.itemType !== 'STRING' && v.items.length)) throw new GgufError('bad-tokenizer', `${file}: ${key} is not an array of strings`, file);
  return v.items as string[];
}

function id(md: Map<string, GgufValue>, key: string): number | undefined {
  const v = md.get(key);
  return typeof v === 'number' ? v : undefined;
}

/** tokenizer.json and tokenizer_config.json objects for a GGUF's vocabulary; GgufError when it cannot be rebuilt. */
export function ggufTokenizerJson(md: Map<string, GgufValue>, file = 'model.gguf'): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } {
  const model = md.get('tokenizer.ggml.model');
  if (model === undefined) throw new GgufError('no-tokenizer', `${file}: no tokenizer.ggml.model in the metadata`, file);
  if (model !== 'gpt2') throw new GgufError('tokenizer-unsupported', `${file}: tokenizer.ggml.model "${String(model)}" is not supported yet (byte-level BPE "gpt2" is)`, file);
  const pre = md.get('tokenizer.ggml.pre');
  const preName = typeof pre === 'string' ? pre : 'default';
  if (!(preName in PRE_REGEX)) throw new GgufError('tokenizer-unsupported', `${file}: pre-tokenizer "${preName}" is not supported yet (${Object.keys(PRE_REGEX).join(', ')})`, file);
  const tokens = strings(md.get('tokenizer.ggml.tokens'), 'tokenizer.ggml.tokens', file);
  const merges = strings(md.get('tokenizer.ggml.merges'), 'tokenizer.ggml.merges', file);
  const typesV = md.get('tokenizer.ggml.token_type');
  const types = typesV && typeof typesV === 'object' ? (typesV.items as number[]) : [];
  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  tokens.forEach((t, i) => {
    vocab[t] = i;
    const ty = types[i];
    if (ty === CONTROL || ty === USER_DEFINED) added.push({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: ty === USER_DEFINED, special: ty === CONTROL });
  });
  const regex = PRE_REGEX[preName];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: regex === null };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: regex === null ? byteLevel : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // Byte-level tokens never hold a plain space (it is Ġ), so the first space splits a merge.
      merges: merges.map((m) => {
        const at = m.indexOf(' ');
        return [m.slice(0, at), m.slice(at + 1)];
      }),
    },
  };
  const config: Record<string, unknown> = {};
  const bos = id(md, 'tokenizer.ggml.bos_token_id');
  const eos = id(md, 'tokenizer.ggml.eos_token_id');
  if (bos !== undefined && tokens[bos] !== undefined) config.bos_token = tokens[bos];
  if (eos !== undefined && tokens[eos] !== undefined) config.eos_token = tokens[eos];
  const addBos = md.get('tokenizer.ggml.add_bos_token');
  if (typeof addBos === 'boolean') config.add_bos_token = addBos;
  return { tokenizer, config };
}
