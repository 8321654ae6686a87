import * as vscode from 'vscode';

/** Read-only Markdown reports: no "Save changes?" prompt when closed, and "Save As…" still works. */
export class ReportDocuments implements vscode.TextDocumentContentProvider {
  static readonly scheme = 'moe-inspector-report';
  private readonly contents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  static register(context: vscode.ExtensionContext): ReportDocuments {
    const docs = new ReportDocuments();
    context.subscriptions.push(vscode.workspace.registerTextDocumentContentProvider(ReportDocuments.scheme, docs), docs.changed);
    return docs;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '';
  }

  /** Shows `markdown` as a read-only document titled `title` (one per title: re-running refreshes it). */
  async show(title: string, markdown: string): Promise<vscode.TextDocument> {
    const uri = vscode.Uri.from({ scheme: ReportDocuments.scheme, path: `/${title.replace(/[\\/]/g, '_')}.md` });
    const key = uri.toString();
    const existed = this.contents.has(key);
    this.contents.set(key, markdown);
    if (existed) this.changed.fire(uri);
    const doc = await vscode.workspace.openTextDocument(uri);
    if (doc.languageId !== 'markdown') await vscode.languages.setTextDocumentLanguage(doc, 'markdown');
    await vscode.window.showTextDocument(doc, { preview: false });
    return doc;
  }
}
