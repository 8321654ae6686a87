/** A WebAssembly module's bytes: esbuild.config.mjs compiles the AssemblyScript source of the same name (src/wasm/) and bundles the result. */
declare module '*.wasm' {
  const bytes: Uint8Array;
  // esbuild's binary loader gives the bytes as the module's default export: not our module's shape to choose.
  // eslint-disable-next-line no-restricted-syntax
  export default bytes;
}
