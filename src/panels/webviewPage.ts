import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

/** Scripts on, and resources only from the built webview folder and media (STYLE.md). */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

/**
 * The static page every view starts from: strict CSP with a fresh nonce, the styles and the bundle.
 * `body` is our own fixed markup; no model string ever goes in here (data arrives by message).
 */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: { title: string; styles: string[]; script: string; body: string }): string {
  const nonce = randomBytes(16).toString('base64');
  const uri = (...p: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...p)).toString();
  const csp = `default-src 'none'; script-src 'nonce-${nonce}'; style-src ${webview.cspSource}; font-src ${webview.cspSource}; img-src ${webview.cspSource} data: blob:`;
  const links = page.styles.map((s) => `<link rel="stylesheet" href="${uri('media', s)}">`).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${links}
<title>${page.title}</title>
</head>
<body>
${page.body}
<script nonce="${nonce}" src="${uri('dist', 'webview', page.script)}"></script>
</body>
</html>`;
}
