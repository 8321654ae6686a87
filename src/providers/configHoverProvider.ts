import * as vscode from 'vscode';
import { hoverAt } from '../core/memory/hoverText';
import { CONFIG_SELECTOR } from './configModelCache';
import type { ConfigModelCache } from './configModelCache';

/** Hover on config.json keys: what the key means and what it costs for this model. */
export function registerConfigHoverProvider(context: vscode.ExtensionContext, cache: ConfigModelCache): void {
  const provider: vscode.HoverProvider = {
    async provideHover(doc, position, token) {
      const model = await cache.get(doc);
      if (!model || token.isCancellationRequested) return undefined;
      const h = hoverAt(doc.getText(), doc.offsetAt(position), model);
      if (!h || token.isCancellationRequested) return undefined;
      const range = h.range ? new vscode.Range(doc.positionAt(h.range.offset), doc.positionAt(h.range.offset + h.range.length)) : undefined;
      return new vscode.Hover(new vscode.MarkdownString(h.markdown), range);
    },
  };
  context.subscriptions.push(vscode.languages.registerHoverProvider(CONFIG_SELECTOR, provider));
}
