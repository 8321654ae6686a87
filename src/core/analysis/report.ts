import { COMPONENT_LABELS } from './types';
import type { AnalysisResult } from './types';
import type { Component } from '../config/types';

/**
 * 46702792704 → "46,702,792,704": every digit of the rounded number, grouped by threes. Written out
 * rather than toLocaleString('en-US'), whose first call loads ICU's number formats (~10 ms, the
 * largest single cost left after a CLI analysis's last header: `npm run bench`).
 */
export function exact(n: number): string {
  const r = Math.round(n);
  // Not finite, or beyond 21 digits (String() turns to exponents): ICU, whatever its first call costs.
  if (!(Math.abs(r) < 1e21)) return r.toLocaleString('en-US');
  const digits = String(Math.abs(r));
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = out.length; i < digits.length; i += 3) out += `,${digits.slice(i, i + 3)}`;
  return r < 0 ? `-${out}` : out;
}

/** 46702792704 → "46.70 B"; small counts stay exact. */
export function short(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e12) return `${(n / 1e12).toFixed(2)} T`;
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** Bytes in binary units: 93405585408 → "86.99 GiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]}`;
}

function pct(part: number, whole: number): string {
  return whole ? `${((100 * part) / whole).toFixed(1)} %` : '–';
}

/** Where the counts came from, in words. */
export function sourceLabel(r: Pick<AnalysisResult, 'source'>): string {
  return r.source === 'headers' ? 'safetensors headers' : r.source === 'gguf' ? 'GGUF header' : 'config.json only';
}

/** Escapes text for a Markdown table cell (model-provided strings are data, not markup). */
export function mdEscape(s: string): string {
  return s.replace(/[\\`*_[\]<>|]/g, (c) => `\\${c}`);
}

/** The analysis as a Markdown report (also what the extension opens). */
export function toMarkdown(r: AnalysisResult): string {
  const p = r.params;
  const L: string[] = [];
  L.push(`# MoE analysis: ${mdEscape(r.modelType)}`, '');
  L.push(`Source: **${sourceLabel(r)}** · ${mdEscape(r.path)}`, '');
  L.push('| | |', '|---|---|');
  L.push(`| Total parameters | **${exact(p.total)}** (${short(p.total)}) |`);
  L.push(`| Active per token | **${exact(p.active)}** (${short(p.active)}) |`);
  L.push(`| Active without input embedding | ${exact(p.activeExcludingInputEmbedding)} (${short(p.activeExcludingInputEmbedding)}) |`);
  if (p.mtp) L.push(`| MTP layers (not in total) | ${exact(p.mtp)} (${short(p.mtp)}) |`);
  if (p.buffers) L.push(`| Stored buffers (not parameters) | ${exact(p.buffers)} |`);
  L.push(`| Routed experts × top-k | ${r.moe.routedExperts} × ${r.moe.expertsPerToken} |`);
  L.push(`| Shared experts | ${r.moe.sharedExperts} |`);
  L.push(`| Layers | ${r.moe.moeLayers} MoE + ${r.moe.denseLayers} dense${r.moe.mtpLayers ? ` + ${r.moe.mtpLayers} MTP` : ''} |`);
  L.push(`| Parameters per expert | ${exact(p.perExpert)} |`);
  L.push(`| Router | ${mdEscape(r.moe.router.description)} |`);
  L.push(`| Attention | ${Object.entries(r.attention.kinds).map(([k, n]) => `${n} × ${k}`).join(', ')}; ${r.attention.numHeads} heads, ${r.attention.numKvHeads} KV heads, head dim ${r.attention.headDim} |`);
  L.push(`| Bytes on disk | ${bytes(r.bytes.total)} (${exact(r.bytes.total)} B) |`);
  if (r.quantization) L.push(`| Quantization | ${mdEscape(r.quantization.method)}${r.quantization.bits ? ` ${r.quantization.bits}-bit` : ''} |`);
  L.push(`| Files | ${r.files.shards} ${r.gguf ? 'GGUF file' : 'shard'}(s), ${r.files.tensors} tensors (${r.files.layout}) |`);
  if (r.gguf) {
    const g = r.gguf;
    L.push(`| GGUF | ${mdEscape(g.architecture)}${g.fileType ? `, ${g.fileType}` : ''}; ${g.blockCount} blocks${g.nextnLayers ? ` (${g.nextnLayers} nextn/MTP)` : ''}, ${g.leadingDenseBlocks} leading dense, gating ${g.expertGating}${g.expertGroups ? `, ${g.expertGroups.used} of ${g.expertGroups.count} groups` : ''} |`);
  }
  L.push('');
  L.push('## Parameters by component', '', '| Component | Parameters | Share |', '|---|---:|---:|');
  for (const [k, v] of Object.entries(p.byComponent)) if (v) L.push(`| ${COMPONENT_LABELS[k as Component] ?? k} | ${exact(v)} | ${pct(v, p.total)} |`);
  L.push('');
  if (r.gguf) {
    L.push('## Bytes by ggml type', '', '| type | Tensors | Bytes | |', '|---|---:|---:|---:|');
    for (const [k, v] of Object.entries(r.bytes.byDtype)) L.push(`| ${k} | ${r.gguf.tensorsByType[k] ?? 0} | ${exact(v)} | ${bytes(v)} |`);
  } else {
    L.push('## Bytes by dtype', '', '| dtype | Bytes | |', '|---|---:|---:|');
    for (const [k, v] of Object.entries(r.bytes.byDtype)) L.push(`| ${k} | ${exact(v)} | ${bytes(v)} |`);
  }
  if (r.bytes.indexTotalSize !== undefined) L.push('', `Index metadata.total_size: ${exact(r.bytes.indexTotalSize)} B`);
  L.push('');
  L.push('## Layers', '', '| Layer | Kind | Attention | Parameters | Routed experts | Per expert | Active |', '|---:|---|---|---:|---:|---:|---:|');
  for (const l of p.perLayer) L.push(`| ${l.layer} | ${l.kind} | ${l.attention ?? ''} | ${exact(l.params)} | ${exact(l.routedExperts)} | ${exact(l.perExpert)} | ${exact(l.active)} |`);
  if (p.config) {
    L.push('', '## Config vs headers', '');
    L.push(`From config.json alone: total ${exact(p.config.total)}, active ${exact(p.config.active)}.`);
    if (p.config.differences.length === 0) L.push('', 'The headers hold exactly the tensors the config implies.');
    else {
      const all = p.config.differences.length + (p.config.differencesOmitted ?? 0);
      L.push('', `${all} difference(s):`, '', '| Kind | Tensor | Config | Headers |', '|---|---|---|---|');
      for (const d of p.config.differences.slice(0, 200)) L.push(`| ${d.kind} | ${mdEscape(d.name)} | ${d.expected ?? ''} | ${d.actual ?? ''} |`);
      if (all > 200) L.push('', `… and ${all - 200} more (${p.config.differencesOmitted ? `the JSON output lists the first ${p.config.differences.length}` : 'see the JSON output'}).`);
    }
  }
  L.push('', '## How this was counted', '');
  for (const c of p.conventions) L.push(`- ${c}`);
  if (r.warnings.length) {
    L.push('', '## Warnings', '');
    for (const w of r.warnings) L.push(`- ${mdEscape(w)}`);
  }
  return L.join('\n') + '\n';
}

/** A compact plain-text report for the terminal. */
export function toText(r: AnalysisResult): string {
  const p = r.params;
  const rows: [string, string][] = [
    ['model', `${r.modelType} (${r.family}), from ${sourceLabel(r)}`],
    ['experts', `${r.moe.routedExperts} routed × top-${r.moe.expertsPerToken}, ${r.moe.sharedExperts} shared; ${r.moe.moeLayers} MoE + ${r.moe.denseLayers} dense layers${r.moe.mtpLayers ? `, ${r.moe.mtpLayers} MTP` : ''}`],
    ['router', r.moe.router.description],
    ['total params', `${exact(p.total)} (${short(p.total)})`],
    ['active params', `${exact(p.active)} (${short(p.active)}); without input embedding ${exact(p.activeExcludingInputEmbedding)} (${short(p.activeExcludingInputEmbedding)})`],
    ['per expert', exact(p.perExpert)],
  ];
  if (p.mtp) rows.push(['MTP params', `${exact(p.mtp)} (${short(p.mtp)}), not in total`]);
  if (p.buffers) rows.push(['buffers', `${exact(p.buffers)} stored values that are not parameters`]);
  rows.push(['components', Object.entries(p.byComponent).filter(([, v]) => v).map(([k, v]) => `${k} ${short(v)}`).join(', ')]);
  rows.push(['bytes', `${bytes(r.bytes.total)} — ${Object.entries(r.bytes.byDtype).map(([k, v]) => `${k} ${bytes(v)}`).join(', ')}`]);
  rows.push(['files', r.source === 'config' ? 'none read: counted from config.json (bytes as the family stores them)' : `${r.files.shards} ${r.gguf ? 'GGUF file' : 'shard'}(s), ${r.files.tensors} tensors, ${exact(r.files.bytesRead)} header bytes read`]);
  const diffCount = p.config ? p.config.differences.length + (p.config.differencesOmitted ?? 0) : 0;
  if (p.config) rows.push(['config vs headers', diffCount ? `${diffCount} difference(s); config total ${exact(p.config.total)}` : 'identical tensor sets']);
  const w = Math.max(...rows.map(([k]) => k.length));
  const out = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
  for (const x of r.warnings) out.push(`warning: ${x}`);
  return out.join('\n') + '\n';
}
