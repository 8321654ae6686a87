import type { Dtype } from './dtypes';

/** One tensor as described by a safetensors header. Offsets are absolute file offsets of the data. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Number of elements (product of shape). */
  numel: number;
  /** Bytes of data (end - begin of data_offsets). */
  bytes: number;
  /** data_offsets as written in the header (relative to the data region). */
  dataOffsets: [number, number];
  /** Shard file, relative to the model folder (forward slashes). */
  file: string;
}

/** One shard's parsed header. */
export interface ShardHeader {
  file: string;
  fileSize: number;
  headerLength: number;
  metadata: Record<string, string>;
  tensors: TensorInfo[];
}

/** Everything the reader found in a model folder (or a lone file). */
export interface CheckpointHeaders {
  /** Absolute path of the folder the shards live in. */
  root: string;
  /** How the shards were found. */
  layout: 'single' | 'index' | 'shard-names' | 'lone-file' | 'none';
  shards: ShardHeader[];
  /** All tensors across shards, in shard order. */
  tensors: TensorInfo[];
  /** metadata.total_size of model.safetensors.index.json when present. */
  indexTotalSize?: number;
  /** Bytes actually read from disk (headers and index only). */
  bytesRead: number;
  warnings: string[];
}
