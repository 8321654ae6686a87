import * as path from 'node:path';
import { metadataForDisplay } from '../core/gguf/display';
import { readGgufHeaderFile } from '../core/gguf/reader';
import type { TensorFileSource } from './safetensorsEditor';
import { columnsOf } from './tensorColumns';

export const GGUF_VIEW_TYPE = 'moeInspector.ggufViewer';

const SPLIT_RE = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/**
 * The `.gguf` viewer's source: the file's GGUF header (metadata with long arrays such as the
 * tokenizer elided, tensors with their ggml type, PyTorch-order shape and bytes). Split parts are
 * recognised by gguf-split's names; "Analyze" then opens the whole set.
 */
export const GGUF_SOURCE: TensorFileSource = {
  title: 'GGUF header',
  async read(fsPath, file) {
    const h = readGgufHeaderFile(fsPath);
    const m = SPLIT_RE.exec(file);
    return {
      format: 'gguf',
      file,
      fileSize: h.fileSize,
      headerLength: h.dataOffset,
      metadata: metadataForDisplay(h),
      // PyTorch-order shapes like every other view; the ggml type stands in the dtype column.
      tensors: columnsOf(h.tensors, (t) => ({ name: t.name, dtype: t.type.name, shape: t.shape, numel: t.numel, bytes: t.bytes, begin: t.offset })),
      ...(m ? { shard: { index: Number(m[2]), total: Number(m[3]), source: 'name' as const, folderName: path.basename(path.dirname(fsPath)) } } : {}),
    };
  },
  // Any part brings the whole split set.
  analyzeTarget: (fsPath) => fsPath,
};
