import * as vscode from 'vscode';
import type { CustomGpu, KvDtype, WeightPrecision } from '../core/memory/types';

/** One entry of `moeInspector.sizing.customGpus`, as the user writes it. */
export interface CustomGpuSetting {
  id: string;
  name: string;
  /** Total memory in GiB, e.g. nvidia-smi's "81559 MiB" / 1024 = 79.65. */
  memoryGiB?: number;
  /** Total memory in bytes (MiB × 1,048,576). */
  memoryBytes?: number;
  /** Data-sheet GB, read as 10^9 B (kept for settings written before memoryGiB existed). */
  memoryGB?: number;
  bandwidthGBs: number;
  bf16Tflops: number;
  fp8Tflops?: number;
}

/** The sizing defaults from settings, read at use time (they may change at any moment). */
export interface SizingDefaults {
  gpu: string;
  precision: WeightPrecision;
  kvDtype: KvDtype;
  context: number;
  concurrency: number;
  headroomPct: number;
  customGpus: CustomGpu[];
}

/** Reads `moeInspector.sizing.*` for a document's folder (the settings are resource-scoped). */
export function readSizingDefaults(scope?: vscode.Uri): SizingDefaults {
  const c = vscode.workspace.getConfiguration('moeInspector.sizing', scope);
  return {
    gpu: c.get<string>('defaultGpu', 'h100'),
    precision: c.get<WeightPrecision>('precision', 'as-stored'),
    kvDtype: c.get<KvDtype>('kvDtype', 'bf16'),
    context: c.get<number>('context', 8192),
    concurrency: c.get<number>('concurrency', 1),
    headroomPct: c.get<number>('headroomPct', 10),
    customGpus: customGpuSpecs(c.get<unknown[]>('customGpus', [])),
  };
}

/**
 * Custom GPUs in the engine's units (bytes, bytes/s, FLOP/s). Only the fields given are set, so an
 * entry with a catalog id overrides just those numbers; entries without an id are skipped.
 */
export function customGpuSpecs(list: unknown): CustomGpu[] {
  const out: CustomGpu[] = [];
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
  for (const e of Array.isArray(list) ? list : []) {
    const g = (e ?? {}) as Partial<Record<keyof CustomGpuSetting, unknown>>;
    if (typeof g.id !== 'string' || !g.id) continue;
    const memory = customGpuMemory(g);
    const bandwidth = num(g.bandwidthGBs);
    const bf16 = num(g.bf16Tflops);
    const fp8 = num(g.fp8Tflops);
    out.push({
      id: g.id,
      ...(typeof g.name === 'string' ? { name: g.name } : {}),
      ...(memory ?? {}),
      ...(bandwidth ? { bandwidth: bandwidth * 1e9 } : {}),
      ...(bf16 ? { bf16Flops: bf16 * 1e12 } : {}),
      ...(fp8 ? { fp8Flops: fp8 * 1e12 } : {}),
      source: 'moeInspector.sizing.customGpus',
    });
  }
  return out;
}

/**
 * The memory of a custom GPU from whichever unit the entry uses: memoryBytes, then memoryGiB (both
 * readings of the card, e.g. `nvidia-smi --query-gpu=memory.total --format=csv`), then memoryGB
 * (a data-sheet figure, read as 10^9 B).
 */
function customGpuMemory(g: Partial<Record<keyof CustomGpuSetting, unknown>>): Pick<CustomGpu, 'memoryBytes' | 'memorySource' | 'memoryMeasured'> | undefined {
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
  const bytes = num(g.memoryBytes);
  if (bytes) return { memoryBytes: Math.round(bytes), memorySource: 'moeInspector.sizing.customGpus memoryBytes', memoryMeasured: true };
  const gib = num(g.memoryGiB);
  if (gib) return { memoryBytes: Math.round(gib * 2 ** 30), memorySource: 'moeInspector.sizing.customGpus memoryGiB', memoryMeasured: true };
  const gb = num(g.memoryGB);
  if (gb) return { memoryBytes: gb * 1e9, memorySource: 'moeInspector.sizing.customGpus memoryGB, read as 10^9 B', memoryMeasured: false };
  return undefined;
}

/** A stable key of the settings that change a sizing, for caches. */
export function defaultsKey(d: SizingDefaults): string {
  return JSON.stringify(d);
}
