// Opens a Hugging Face checkpoint folder for tracing: config, tensor headers, and where each shard
// really lives (HF cache snapshots are symlinks into blobs/, and onnxruntime only follows external
// data that resolves inside its external-data folder).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfigText } from '../core/config/readConfig';
import type { MoeConfig } from '../core/config/types';
import { ModelFolderError } from '../core/errors';
import { readCheckpointHeaders } from '../core/safetensors/reader';
import type { TensorInfo } from '../core/safetensors/types';
import type { WeightSource } from './onnx/graphBuilder';
import type { WeightReader } from './weights';

export interface TraceCheckpoint extends WeightSource {
  folder: string;
  config: MoeConfig;
  /** Folder onnxruntime resolves external data against (real path, after symlinks). */
  externalFolder: string;
  /** Absolute (symlink-resolved) path of a shard named in the headers. */
  shardPath(file: string): string;
  /** Every tensor of the checkpoint, by name. */
  tensors: ReadonlyMap<string, TensorInfo>;
  /** The layered engine's reader when the weights are not safetensors (a GGUF's quantized blocks); default WeightReader. */
  openReader?: () => WeightReader;
}

function commonDir(dirs: string[]): string {
  let parts = dirs[0].split(path.sep);
  for (const d of dirs.slice(1)) {
    const q = d.split(path.sep);
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(path.sep) || path.sep;
}

/** Reads config.json and the safetensors headers of `folder`. */
export async function openCheckpoint(folder: string): Promise<TraceCheckpoint> {
  const configPath = path.join(folder, 'config.json');
  if (!fs.existsSync(configPath)) throw new ModelFolderError('no-config', `${folder} has no config.json.`, configPath);
  const { config } = parseConfigText(await fs.promises.readFile(configPath, 'utf8'), configPath);
  const headers = await readCheckpointHeaders(folder);
  if (!headers.shards.length) throw new ModelFolderError('no-safetensors', `${folder} has no safetensors weights.`);
  const tensors = new Map<string, TensorInfo>(headers.tensors.map((t) => [t.name, t]));
  const real = new Map<string, string>();
  for (const s of headers.shards) real.set(s.file, await fs.promises.realpath(path.join(headers.root, s.file)));
  const externalFolder = commonDir([...real.values()].map((p) => path.dirname(p)));
  const dataStart = new Map(headers.shards.map((s) => [s.file, 8 + s.headerLength]));
  return {
    folder: headers.root,
    config,
    externalFolder,
    tensor: (name) => tensors.get(name),
    tensors,
    shardPath(file) {
      const abs = real.get(file);
      if (abs === undefined) throw new ModelFolderError('unknown-shard', `No shard named ${file}.`, file);
      return abs;
    },
    locate(file) {
      const abs = real.get(file);
      const start = dataStart.get(file);
      if (abs === undefined || start === undefined) throw new ModelFolderError('unknown-shard', `No shard named ${file}.`, file);
      return { location: path.relative(externalFolder, abs).split(path.sep).join('/'), dataStart: start };
    },
  };
}
