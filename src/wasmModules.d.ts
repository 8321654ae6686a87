/** A WebAssembly module's bytes: esbuild.config.mjs compiles the AssemblyScript source of the same name (src/wasm/) and bundles the result. */
declare module '*.wasm' {
  const bytes: Uint8Array;
  export default bytes;
}
