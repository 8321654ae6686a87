import * as vscode from 'vscode';
import { fmtExact, fmtParams, smallestFit } from '../core/memory/hoverText';
import { CONFIG_SELECTOR } from './configModelCache';
import type { ConfigModelCache } from './configModelCache';

/** CodeLens at the top of a model's config.json: total and active parameters, and the smallest GPU fit. */
export function registerConfigCodeLensProvider(context: vscode.ExtensionContext, cache: ConfigModelCache): void {
  const provider: vscode.CodeLensProvider = {
    onDidChangeCodeLenses: cache.onDidChange,
    async provideCodeLenses(doc, token) {
      const model = await cache.get(doc);
      if (!model || token.isCancellationRequested) return [];
      const { analysis: a, sizing: s } = model;
      const top = new vscode.Range(0, 0, 0, 0);
      const lenses = [
        new vscode.CodeLens(top, {
          title: `$(symbol-numeric) ${a.family}: ${fmtExact(a.params.total)} params (${fmtParams(a.params.total)}) total · ${fmtParams(a.params.active)} active`,
          tooltip: `${fmtExact(a.params.active)} parameters used per token (top-${a.moe.expertsPerToken} of ${a.moe.routedExperts} experts). Click for the full analysis.`,
          ...(doc.uri.scheme === 'file' ? { command: 'moeInspector.analyze', arguments: [doc.uri] } : { command: '' }),
        }),
      ];
      const fit = s && smallestFit(s);
      const title = !s
        ? '$(server) Sizing Report…'
        : fit
          ? `$(server) smallest fit: ${fit.gpus}× ${s.gpu.name} (${fit.layout.toUpperCase()}, ${s.precision}, ${fmtExact(s.context)} tokens × ${s.concurrency})`
          : `$(warning) does not fit on up to ${Math.max(0, ...s.layouts.map((l) => l.gpus))}× ${s.gpu.name}`;
      lenses.push(new vscode.CodeLens(top, {
        title,
        tooltip: 'Open the sizing report (GPU, precision, context and concurrency)',
        command: 'moeInspector.sizingReport',
        arguments: [{ config: doc.uri }],
      }));
      return lenses;
    },
  };
  context.subscriptions.push(vscode.languages.registerCodeLensProvider(CONFIG_SELECTOR, provider));
}
