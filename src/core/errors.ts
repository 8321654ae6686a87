/** Base class of every error the core raises on bad input. `reason` is a stable machine-readable code. */
export class MoeInspectorError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly file?: string,
    readonly tensor?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The safetensors header or index is malformed, hostile or inconsistent. */
export class SafetensorsError extends MoeInspectorError {}

/** The model folder is missing files, or a path escapes it. */
export class ModelFolderError extends MoeInspectorError {}

/** config.json is missing, not JSON, or cannot describe a model. */
export class ConfigError extends MoeInspectorError {}

/** A worker thread ended without giving its answer (out of memory, killed, stopped). */
export class WorkerError extends MoeInspectorError {}

/** The operation was cancelled through its AbortSignal. */
export class CancelledError extends MoeInspectorError {
  constructor() {
    super('cancelled', 'The operation was cancelled.');
  }
}

/**
 * The one stderr line the CLI prints for a failure: named errors with their reason code (a message
 * that quotes bad input may hold newlines; they are folded so the reason stays on the line), anything
 * else as an internal error, which is a bug.
 */
export function errorLine(e: unknown): string {
  const msg = e instanceof MoeInspectorError ? `${e.message.replace(/\s*[\r\n]+\s*/g, ' ')} [${e.reason}]` : `internal error: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
  return `moe-inspector: ${msg}\n`;
}

/** A GGUF file's header is malformed, hostile, truncated, or a split set is incomplete. */
export class GgufError extends MoeInspectorError {}
