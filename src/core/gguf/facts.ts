import type { HeaderFacts } from '../analysis/analyze';
import type { GgufSummary } from '../analysis/types';
import type { MoeConfig } from '../config/types';
import { llamaCppLayout } from './llamaCpp';
import type { GgufArch } from './moeConfig';
import { ggufAccounting } from './moeConfig';
import type { GgufModel } from './types';

/** llama_ftype (include/llama.h) as llama.cpp prints it; general.file_type stores the number. */
const FILE_TYPES: Record<number, string> = {
  0: 'ALL_F32', 1: 'MOSTLY_F16', 2: 'MOSTLY_Q4_0', 3: 'MOSTLY_Q4_1', 7: 'MOSTLY_Q8_0', 8: 'MOSTLY_Q5_0', 9: 'MOSTLY_Q5_1',
  10: 'MOSTLY_Q2_K', 11: 'MOSTLY_Q3_K_S', 12: 'MOSTLY_Q3_K_M', 13: 'MOSTLY_Q3_K_L', 14: 'MOSTLY_Q4_K_S', 15: 'MOSTLY_Q4_K_M',
  16: 'MOSTLY_Q5_K_S', 17: 'MOSTLY_Q5_K_M', 18: 'MOSTLY_Q6_K', 19: 'MOSTLY_IQ2_XXS', 20: 'MOSTLY_IQ2_XS', 21: 'MOSTLY_Q2_K_S',
  22: 'MOSTLY_IQ3_XS', 23: 'MOSTLY_IQ3_XXS', 24: 'MOSTLY_IQ1_S', 25: 'MOSTLY_IQ4_NL', 26: 'MOSTLY_IQ3_S', 27: 'MOSTLY_IQ3_M',
  28: 'MOSTLY_IQ2_S', 29: 'MOSTLY_IQ2_M', 30: 'MOSTLY_IQ4_XS', 31: 'MOSTLY_IQ1_M', 32: 'MOSTLY_BF16', 36: 'MOSTLY_TQ1_0',
  37: 'MOSTLY_TQ2_0', 38: 'MOSTLY_MXFP4_MOE',
};

/** The analysis' view of a GGUF model's headers (counted on their own: no transformers family applies). */
export function ggufFacts(model: GgufModel): HeaderFacts {
  return {
    format: 'gguf',
    layout: model.parts.length > 1 ? 'shard-names' : 'lone-file',
    shardNames: model.parts.map((p) => p.file),
    tensors: model.tensors.length,
    bytesRead: model.bytesRead,
    warnings: model.warnings,
    account: (cfg: MoeConfig) => ggufAccounting(model, cfg),
    presentNames: () => new Set(model.tensors.map((t) => t.name)),
  };
}

/** The GGUF block of an AnalysisResult. */
export function ggufSummary(model: GgufModel, a: GgufArch): GgufSummary {
  const tensorsByType: Record<string, number> = {};
  for (const t of model.tensors) tensorsByType[t.type.name] = (tensorsByType[t.type.name] ?? 0) + 1;
  const ft = model.metadata.get('general.file_type');
  const name = model.metadata.get('general.name');
  return {
    architecture: a.arch,
    ...(typeof name === 'string' ? { name } : {}),
    ...(typeof ft === 'number' ? { fileType: FILE_TYPES[ft] ?? `file_type ${ft}` } : {}),
    blockCount: a.blockCount,
    nextnLayers: a.nextn,
    leadingDenseBlocks: a.leadingDense,
    expertGating: a.gating,
    ...(a.groupCount > 1 ? { expertGroups: { count: a.groupCount, used: a.groupUsed } } : {}),
    ...(a.contextLength ? { contextLength: a.contextLength } : {}),
    tensorsByType,
    parts: model.parts.map((p) => ({ file: p.file, tensors: p.tensors.length, bytes: p.fileSize, headerBytes: p.dataOffset })),
    llamaCpp: llamaCppLayout(model, a),
  };
}
