// Its own module so the extension host can name the sidecar without bundling the analysis (and with
// it the family registry), which runs in the analysis worker.

/** The ModelOpt quantization sidecar read beside config.json. */
export const QUANT_SIDECAR = 'hf_quant_config.json';
