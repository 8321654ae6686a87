/**
 * Contract between the `.safetensors` viewer (custom editor, src/panels/safetensorsEditor.ts)
 * and its webview (webview/tensors). Type-only.
 *
 * The tensor list travels in columnar form — one string and a few typed arrays — so a header of
 * tens of thousands of tensors is a handful of buffers to clone instead of an object per tensor.
 */

/** One shard's header, column by column; row i of every column is tensor i in header order. */
export interface TensorColumns {
  /** Number of tensors. */
  count: number;
  /** Every tensor name, concatenated. */
  names: string;
  /** End offset of name i in `names` (name i = names.slice(nameEnd[i-1] ?? 0, nameEnd[i])); any character may occur in a name. */
  nameEnd: Uint32Array;
  /** Dtype names indexed by the codes in `dtype`. */
  dtypeNames: string[];
  dtype: Uint8Array;
  /** Dims of tensor i are dims[dimStart[i] .. dimStart[i+1]); length count + 1. */
  dimStart: Uint32Array;
  dims: Float64Array;
  /** Elements (product of the shape). */
  numel: Float64Array;
  /** Bytes of data (data_offsets end − begin). */
  bytes: Float64Array;
  /** data_offsets begin, relative to the data region (file offset = 8 + headerLength + begin). */
  begin: Float64Array;
}

/** Where this file sits in a sharded checkpoint, when it is one shard of several. */
export interface ShardInfo {
  /** 1-based position among the shards (or GGUF split parts). */
  index: number;
  total: number;
  /** How it was recognised: the `-0000k-of-0000n` name, or a sibling `*.safetensors.index.json`. */
  source: 'name' | 'index';
  /** Name of the folder holding the shards (for the label only; the host keeps the path). */
  folderName: string;
}

export interface TensorFileView {
  /** The file format (safetensors when absent): GGUF shows ggml types and a binary header. */
  format?: 'safetensors' | 'gguf';
  /** File name (no folder). */
  file: string;
  fileSize: number;
  headerLength: number;
  metadata: Record<string, string>;
  tensors: TensorColumns;
  shard?: ShardInfo;
  /** Milliseconds the host spent reading and parsing the header. */
  readMs: number;
}

/** Host → webview. */
export type HostToTensorViewer =
  | { type: 'file'; view: TensorFileView }
  | { type: 'error'; file: string; reason: string; message: string };

/** Totals of one dtype, as the webview computed and rendered them. */
export interface DtypeTotal {
  dtype: string;
  tensors: number;
  params: number;
  bytes: number;
}

/** What the webview has on screen: reported back so tests can check the rendered result. */
export interface RenderedSummary {
  tensorCount: number;
  /** Tensors passing the current filter. */
  matching: number;
  totalParams: number;
  totalBytes: number;
  dtypeTotals: DtypeTotal[];
  /** Whether the "analyze the whole folder" action is offered. */
  analyzeFolderOffered: boolean;
  /** Error text shown instead of a table. */
  error?: string;
}

/** Webview → host. */
export type TensorViewerToHost =
  | { type: 'ready' }
  | { type: 'rendered'; summary: RenderedSummary }
  | { type: 'analyzeFolder' }
  | { type: 'reload' };
