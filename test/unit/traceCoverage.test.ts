// Every published config in the fixtures (real-configs and this year's real-configs-2026) must trace: the
// trace family of its model_type builds a layer program from the tensors the checkpoint publishes (the
// core family's expected tensor list: names, shapes, dtypes as shipped). A family that the counting knows
// but the tracer refuses fails here with the refusal's reason, unless it is listed in REFUSED, where the
// refusal itself is checked: a named error that says which blocks are missing.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { expandSpecs } from '../../src/core/config/families/common';
import { normalizeConfig } from '../../src/core/config/readConfig';
import { familyFor } from '../../src/core/config/registry';
import type { TensorInfo } from '../../src/core/safetensors/types';
import { traceFamilyFor } from '../../src/engine/families/registry';
import { TraceUnsupportedError } from '../../src/engine/errors';
import type { LayerProgram } from '../../src/engine/families/traceGraph';
import { blockIo } from '../../src/engine/families/traceGraph';
import { GraphBuilder } from '../../src/engine/onnx/graphBuilder';
import { DataType } from '../../src/engine/onnx/onnxProto';
import { readJson, REAL, REAL_2026, realConfigs, realConfigs2026 } from './util/fixtures';

/** Published families the tracer refuses on purpose, with what the refusal must name (none today). */
const REFUSED: Record<string, RegExp> = {};

/**
 * Families whose program reads no tensor until a block is built (DeepSeek-V4 builds its compressors for
 * the prompt length): every layer's blocks are built here for a prompt of this many tokens.
 */
const BUILD_BLOCKS: Record<string, number> = { deepseek_v4: 300 };

const folders = [...realConfigs().map((d) => path.join(REAL, d)), ...realConfigs2026().map((d) => path.join(REAL_2026, d))];

describe('trace coverage: every published config in the fixtures builds a layer program', () => {
  it('finds the configs', () => assert.ok(folders.length >= 20, `${folders.length} configs`));
  for (const dir of folders) {
    it(path.basename(dir), () => {
      const { config: cfg } = normalizeConfig(readJson(path.join(dir, 'config.json')));
      const core = familyFor(cfg.modelType);
      assert.ok(core, `core family for ${cfg.modelType}`);
      const tensors = new Map<string, TensorInfo>();
      for (const s of expandSpecs(core.expectedTensors(cfg))) {
        tensors.set(s.name, { name: s.name, dtype: s.dtype, shape: s.shape, numel: 0, bytes: 0, dataOffsets: [0, 0], file: 'model.safetensors' });
      }
      const source = { tensor: (n: string) => tensors.get(n), locate: () => ({ location: 'model.safetensors', dataStart: 0 }), folder: dir };
      const build = (): unknown => traceFamilyFor(cfg.modelType).program(cfg, new GraphBuilder(source, true));
      const refused = REFUSED[cfg.modelType];
      if (refused) {
        assert.throws(build, (e: unknown) => e instanceof TraceUnsupportedError && e.reason === 'family-not-supported' && refused.test(e.message));
        return;
      }
      const program = build() as LayerProgram;
      assert.ok(program, `${cfg.modelType}: a layer program`);
      const T = BUILD_BLOCKS[cfg.modelType];
      if (T === undefined) return;
      const H = cfg.hiddenSize;
      const W = (program.streams ?? 1) * H;
      for (const spec of cfg.layers) {
        const g = new GraphBuilder(source, true);
        const { mid, ffnIn } = program.mixer(g, blockIo(g, program.ropeDim, program.ropeFactor, T), spec, g.input('h', DataType.FLOAT, ['T', W]));
        const { routing, fixed } = program.ffn(g, spec, ffnIn);
        assert.ok(mid && routing && fixed, `layer ${spec.index}: attention, router and shared expert`);
        program.expert(g, spec, cfg.routedExperts - 1, ffnIn);
        program.combine(g, spec, mid, fixed, blockIo(g, program.ropeDim, program.ropeFactor, T));
      }
      const g = new GraphBuilder(source, true);
      assert.ok(program.finalNorm(g, g.input('h', DataType.FLOAT, [1, W])));
    });
  }
});
