import { createScanner, SyntaxKind } from 'jsonc-parser/lib/esm/main';

/**
 * Top-level keys that only a model's config.json carries: transformers' `PretrainedConfig` always
 * writes `model_type` and `architectures`; multimodal wrappers put the language model under
 * `text_config`. Other tools' JSON (package.json, tsconfig.json, settings.json, a bundler's
 * config.json) has none of them at the top level.
 */
const MODEL_KEYS = new Set(['model_type', 'architectures', 'text_config']);

/**
 * How far the probe reads. Every published config.json we hold is under 16 KB (DeepSeek-V3.2's is
 * 1.7 KB); a file that has not named its model type by 1 MiB is not one.
 */
export const PROBE_LIMIT_CHARS = 1 << 20;

/**
 * Whether JSON text is a model's config.json, decided from its top-level keys alone with a token
 * scanner: nothing is parsed into objects, nested values are skipped, and the scan stops at the
 * first model key (or after {@link PROBE_LIMIT_CHARS}). This runs on every config.json the editor
 * opens, so a non-model file costs one scan and never reaches the analysis worker.
 */
export function isModelConfigText(text: string): boolean {
  const scanner = createScanner(text.length > PROBE_LIMIT_CHARS ? text.slice(0, PROBE_LIMIT_CHARS) : text, false);
  let depth = 0;
  let first = true;
  // A string at depth 1 is a key when it opens the object or follows a comma.
  let expectKey = false;
  for (let t = scanner.scan(); t !== SyntaxKind.EOF; t = scanner.scan()) {
    if (t === SyntaxKind.Trivia || t === SyntaxKind.LineBreakTrivia || t === SyntaxKind.LineCommentTrivia || t === SyntaxKind.BlockCommentTrivia) continue;
    if (first) {
      // The document must be an object: an array or scalar is no config.
      if (t !== SyntaxKind.OpenBraceToken) return false;
      first = false;
      depth = 1;
      expectKey = true;
      continue;
    }
    switch (t) {
      case SyntaxKind.OpenBraceToken:
      case SyntaxKind.OpenBracketToken:
        depth++;
        expectKey = false;
        break;
      case SyntaxKind.CloseBraceToken:
      case SyntaxKind.CloseBracketToken:
        depth--;
        if (depth <= 0) return false;
        break;
      case SyntaxKind.CommaToken:
        if (depth === 1) expectKey = true;
        break;
      case SyntaxKind.StringLiteral:
        if (depth === 1 && expectKey && MODEL_KEYS.has(scanner.getTokenValue())) return true;
        expectKey = false;
        break;
      default:
        expectKey = false;
    }
  }
  return false;
}
