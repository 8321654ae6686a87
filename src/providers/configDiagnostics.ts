import * as vscode from 'vscode';
import { checkConfig } from '../core/config/diagnostics';
import { isModelConfigText } from '../core/config/modelConfigProbe';
import type { ConfigDiagnosticSeverity } from '../core/config/diagnostics';
import { findNodeAtLocation, getNodeValue, parseTree } from 'jsonc-parser/lib/esm/main';
import type { ParseError } from 'jsonc-parser/lib/esm/main';
import { CONFIG_SELECTOR } from './configModelCache';

const SEVERITY: Record<ConfigDiagnosticSeverity, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};
/** Typing pauses shorter than this do not re-check. */
const DEBOUNCE_MS = 250;

/** Diagnostics for inconsistent values in a model's config.json (top-k > experts, KV heads, head size, sizes ≤ 0). */
export function registerConfigDiagnostics(context: vscode.ExtensionContext): void {
  const collection = vscode.languages.createDiagnosticCollection('moeInspector');
  const timers = new Map<string, NodeJS.Timeout>();

  const check = (doc: vscode.TextDocument): void => {
    if (vscode.languages.match(CONFIG_SELECTOR, doc) === 0) return;
    collection.set(doc.uri, diagnose(doc));
  };
  const schedule = (doc: vscode.TextDocument): void => {
    const key = doc.uri.toString();
    clearTimeout(timers.get(key));
    timers.set(key, setTimeout(() => {
      timers.delete(key);
      check(doc);
    }, DEBOUNCE_MS));
  };

  vscode.workspace.onDidOpenTextDocument(check, undefined, context.subscriptions);
  vscode.workspace.onDidChangeTextDocument((e) => schedule(e.document), undefined, context.subscriptions);
  vscode.workspace.onDidCloseTextDocument((d) => {
    clearTimeout(timers.get(d.uri.toString()));
    collection.delete(d.uri);
  }, undefined, context.subscriptions);
  for (const doc of vscode.workspace.textDocuments) check(doc);
  context.subscriptions.push(collection, { dispose: () => timers.forEach((t) => clearTimeout(t)) });
}

function diagnose(doc: vscode.TextDocument): vscode.Diagnostic[] {
  const text = doc.getText();
  // Only configs of models: other tools' config.json files stay untouched (and unparsed).
  if (!isModelConfigText(text)) return [];
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true });
  // Syntax errors are the JSON language service's to report; a half-typed file has nothing to check yet.
  if (!tree || errors.length > 0) return [];
  const raw = getNodeValue(tree) as unknown;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return [];
  return checkConfig(raw).map((d) => {
    const node = findNodeAtLocation(tree, d.path);
    const range = node ? new vscode.Range(doc.positionAt(node.offset), doc.positionAt(node.offset + node.length)) : new vscode.Range(0, 0, 0, 1);
    const diag = new vscode.Diagnostic(range, d.message, SEVERITY[d.severity]);
    diag.source = 'MoE Inspector';
    return diag;
  });
}
