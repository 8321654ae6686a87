// Webview entry (dashboards arrive with the dashboard issue). DOM only: no vscode, no Node built-ins.
export {};
