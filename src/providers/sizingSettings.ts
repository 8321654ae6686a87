import * as vscode from 'vscode';
import type { CustomGpu, KvDtype, WeightPrecision } from '../core/memory/types';

/** One entry of `moeInspector.sizing.customGpus`, as the user writes it. */
export interface CustomGpuSetting {
  id: string;
  name: string;
  memoryGB: number;
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
    const memory = num(g.memoryGB);
    const bandwidth = num(g.bandwidthGBs);
    const bf16 = num(g.bf16Tflops);
    const fp8 = num(g.fp8Tflops);
    out.push({
      id: g.id,
      ...(typeof g.name === 'string' ? { name: g.name } : {}),
      ...(memory ? { memoryBytes: memory * 1e9 } : {}),
      ...(bandwidth ? { bandwidth: bandwidth * 1e9 } : {}),
      ...(bf16 ? { bf16Flops: bf16 * 1e12 } : {}),
      ...(fp8 ? { fp8Flops: fp8 * 1e12 } : {}),
      source: 'moeInspector.sizing.customGpus',
    });
  }
  return out;
}

/** A stable key of the settings that change a sizing, for caches. */
export function defaultsKey(d: SizingDefaults): string {
  return JSON.stringify(d);
}
