// Model dashboard webview entry (DOM only: no vscode module, no Node built-ins).
export {};
