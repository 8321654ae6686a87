// Routing as serving engines return it → the RawTrace the local tracer produces. Pure: strings and
// numbers in, plain objects out. Layouts checked against the engines' sources (see each decoder).
import type { MoeConfig } from '../../config/types';
import type { RawTrace, RawTraceLayer } from '../types';
import { decodeBase64 } from './base64';
import { parseNpy } from './npy';
import { WireError } from './wireError';

/** Expert ids for rows × layers × k, row-major (C order), as an engine returned them. */
export interface RoutingGrid {
  rows: number;
  layers: number;
  k: number;
  ids: Int32Array;
  /** Element type on the wire ('json' for JSON lists). */
  dtype: string;
}

/** What the model folder says about the layer axis and the expert ids (from config.json). */
export interface ModelShape {
  /** num_hidden_layers. */
  numLayers: number;
  /** Model layer indices whose feed-forward is a routed MoE, ascending. */
  moeLayers: number[];
  /** E. */
  routedExperts: number;
  /** k. */
  expertsPerToken: number;
}

/** The layer kinds of a normalised config as the decoders need them. */
export function modelShapeOf(cfg: MoeConfig): ModelShape {
  return {
    numLayers: cfg.numLayers,
    moeLayers: cfg.layers.filter((l) => l.mlp === 'moe').map((l) => l.index),
    routedExperts: cfg.routedExperts,
    expertsPerToken: cfg.expertsPerToken,
  };
}

/**
 * vLLM ≥ 0.22: `choices[i].routed_experts` = base64 of a .npy of shape
 * (prompt + generated − 1, num_hidden_layers, num_experts_per_tok), dtype uint8/uint16/int32
 * (vllm/entrypoints/openai/completion/protocol.py, CompletionResponseChoice.routed_experts;
 * the capture buffer is indexed by the model's layer_id over num_hidden_layers,
 * vllm/model_executor/layers/fused_moe/routed_experts_capturer.py, so dense layers stay 0).
 */
export function decodeVllmNpy(b64: string): RoutingGrid {
  const a = parseNpy(decodeBase64(b64));
  if (a.shape.length !== 3) throw new WireError('shape-mismatch', `vLLM routed_experts has shape (${a.shape.join(', ')}); expected (tokens, layers, top_k).`);
  return { rows: a.shape[0], layers: a.shape[1], k: a.shape[2], ids: a.data, dtype: a.dtype };
}

/**
 * vLLM 0.21: `prompt_routed_experts` (response level) as JSON lists [prompt_len][layers][top_k].
 * Rectangular integer lists only; anything else is `bad-json`.
 */
export function decodeJsonLists(v: unknown): RoutingGrid {
  if (!Array.isArray(v)) throw new WireError('bad-json', 'prompt_routed_experts is not a list.');
  const rows = v.length;
  const first = rows ? (v[0] as unknown) : [];
  const layers = Array.isArray(first) ? first.length : -1;
  const k = layers > 0 && Array.isArray((first as unknown[])[0]) ? ((first as unknown[])[0] as unknown[]).length : 0;
  if (layers < 0) throw new WireError('bad-json', 'prompt_routed_experts rows are not lists.');
  const ids = new Int32Array(rows * layers * k);
  let o = 0;
  for (let t = 0; t < rows; t++) {
    const row = v[t] as unknown;
    if (!Array.isArray(row) || row.length !== layers) throw new WireError('bad-json', `prompt_routed_experts row ${t} does not have ${layers} layers.`);
    for (let l = 0; l < layers; l++) {
      const cell = row[l] as unknown;
      if (!Array.isArray(cell) || cell.length !== k) throw new WireError('bad-json', `prompt_routed_experts[${t}][${l}] does not have ${k} experts.`);
      for (const e of cell) {
        if (typeof e !== 'number' || !Number.isInteger(e) || e < -(2 ** 31) || e >= 2 ** 31) throw new WireError('bad-json', `prompt_routed_experts[${t}][${l}] holds ${JSON.stringify(e)}, not an integer id.`);
        ids[o++] = e;
      }
    }
  }
  return { rows, layers, k, ids, dtype: 'json' };
}

/**
 * SGLang: base64 of the raw little-endian int32 buffer flattened from [tokens, num_hidden_layers,
 * top_k], no header (python/sglang/srt/layers/moe/routed_experts_capturer.py: int32 host buffer over
 * num_hidden_layers × num_experts_per_tok). The response covers [routed_experts_start_len, seqlen − 1)
 * (GenerateReqInput.routed_experts_start_len), so `rows` is known from the token counts, k from
 * config.json, and the layer count is inferred from the byte count and must be whole.
 */
export function decodeSglangInt32(b64: string, rows: number, k: number): RoutingGrid {
  const bytes = decodeBase64(b64);
  if (bytes.length % 4 !== 0) throw new WireError('byte-count', `SGLang routed_experts has ${bytes.length} bytes, not a whole number of int32 values.`);
  const n = bytes.length / 4;
  if (rows < 1 || k < 1 || n % (rows * k) !== 0) {
    throw new WireError('byte-count', `SGLang routed_experts has ${n} int32 values, not a multiple of ${rows} tokens × top_k ${k}.`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = dv.getInt32(i * 4, true);
  return { rows, layers: n / (rows * k), k, ids, dtype: 'int32' };
}

/** What the trace is of: the prompt's tokens as the local tokenizer shows them. */
export interface TracePrompt {
  modelType: string;
  tokens: string[];
  tokenIds: number[];
  routerKind?: RawTrace['routerKind'];
}

/**
 * A routing grid as the RawTrace the local tracer produces: one entry per MoE layer with
 * `layer` = the model layer index, dense layers absent. The layer axis is either every hidden layer
 * (vLLM ≥ 0.22, SGLang: dense layers are zero rows, and 0 is also a valid expert, so they are dropped
 * by config.json's layer kinds, never by value) or the MoE layers in order (vLLM 0.21 JSON).
 * The grid must hold exactly one row per prompt token and config's top-k; every routed id must be
 * in 0…E−1. Engines return no routing weights: each is set to 1/k (equal), and the caller says so.
 */
export function gridToRawTrace(grid: RoutingGrid, model: ModelShape, prompt: TracePrompt): RawTrace {
  const T = prompt.tokenIds.length;
  const { numLayers, moeLayers, routedExperts: E, expertsPerToken: k } = model;
  if (grid.rows !== T) throw new WireError('shape-mismatch', `The engine returned routing for ${grid.rows} tokens; the prompt has ${T}.`);
  if (grid.k !== k) throw new WireError('shape-mismatch', `The engine returned ${grid.k} experts per token; config.json says num_experts_per_tok = ${k}.`);
  let axis: number[];
  if (grid.layers === numLayers) axis = moeLayers;
  else if (grid.layers === moeLayers.length) axis = moeLayers.map((_, i) => i);
  else throw new WireError('shape-mismatch', `The engine returned ${grid.layers} layers; config.json has ${numLayers} layers, ${moeLayers.length} of them MoE.`);
  const w = 1 / k;
  const layers: RawTraceLayer[] = moeLayers.map((layer, i) => {
    const at = axis[i];
    const topk: number[][] = new Array<number[]>(T);
    const weights: number[][] = new Array<number[]>(T);
    for (let t = 0; t < T; t++) {
      const base = (t * grid.layers + at) * k;
      const row = new Array<number>(k);
      for (let r = 0; r < k; r++) {
        const e = grid.ids[base + r];
        if (e < 0 || e >= E) throw new WireError('expert-out-of-range', `Layer ${layer}, token ${t}: the engine routed to expert ${e}; config.json has ${E} routed experts (0…${E - 1}).`);
        row[r] = e;
      }
      topk[t] = row;
      weights[t] = new Array<number>(k).fill(w);
    }
    return { layer, topk, weights };
  });
  const raw: RawTrace = { modelType: prompt.modelType, routedExperts: E, expertsPerToken: k, tokens: prompt.tokens.slice(), tokenIds: prompt.tokenIds.slice(), layers };
  if (prompt.routerKind) raw.routerKind = prompt.routerKind;
  return raw;
}
