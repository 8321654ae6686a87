import type { GgmlType } from './ggmlTypes';

/** GGUF metadata value types (gguf_type in ggml/include/gguf.h). */
export const GGUF_VALUE_TYPES = ['UINT8', 'INT8', 'UINT16', 'INT16', 'UINT32', 'INT32', 'FLOAT32', 'BOOL', 'STRING', 'ARRAY', 'UINT64', 'INT64', 'FLOAT64'] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];

/** A scalar metadata value; 64-bit integers beyond 2^53 stay bigint so nothing is rounded. */
export type GgufScalar = number | bigint | boolean | string;

/** An array metadata value (tokenizer.ggml.tokens, per-layer head_count_kv …). */
export interface GgufArray {
  kind: 'array';
  itemType: GgufValueType;
  items: GgufScalar[];
}

export type GgufValue = GgufScalar | GgufArray;

/** One tensor info of a GGUF header. */
export interface GgufTensor {
  name: string;
  type: GgmlType;
  /** Dimensions as ggml stores them (ne[0] is the contiguous row). */
  ggmlShape: number[];
  /** Dimensions in PyTorch order (ggmlShape reversed), as everything else in MoE Inspector shows shapes. */
  shape: number[];
  numel: number;
  /** Bytes of data: numel / block elements × bytes per block. */
  bytes: number;
  /** Offset of the data relative to the file's data section (as stored). */
  offset: number;
  /** Absolute offset of the data in its file. */
  absOffset: number;
  /** File (base name) holding the tensor. */
  file: string;
}

/** One parsed GGUF header. */
export interface GgufHeader {
  file: string;
  fileSize: number;
  version: number;
  metadata: Map<string, GgufValue>;
  /** Value type of each key, for display. */
  metadataTypes: Map<string, GgufValueType>;
  tensors: GgufTensor[];
  alignment: number;
  /** Absolute offset where tensor data starts (end of the header region, padded). */
  dataOffset: number;
  /** Bytes read from the file (the header region, in chunks). */
  bytesRead: number;
  /** One past the furthest byte read. */
  readEnd: number;
}

/** A model stored in one GGUF file or a split set. */
export interface GgufModel {
  /** Folder of the files. */
  root: string;
  /** Parts in order (one for an unsplit file). */
  parts: GgufHeader[];
  /** Metadata of the first part (splits repeat the model keys only there). */
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
  bytesRead: number;
  warnings: string[];
}
