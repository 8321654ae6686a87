// .safetensors header viewer webview entry (DOM only: no vscode module, no Node built-ins).
export {};
