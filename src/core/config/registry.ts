import { afmoeFamily } from './families/afmoe';
import { bailingMoeFamily } from './families/bailingMoe';
import { dbrxFamily } from './families/dbrx';
import { deepseekV2Family } from './families/deepseekV2';
import { deepseekV3Family } from './families/deepseekV3';
import { deepseekV32Family } from './families/deepseekV32';
import { deepseekV4Family } from './families/deepseekV4';
import { dots1Family } from './families/dots1';
import { ernie45MoeFamily } from './families/ernie45Moe';
import { ernie45VlMoeFamily } from './families/ernie45VlMoe';
import { flexOlmoFamily } from './families/flexOlmo';
import { gemma4Family } from './families/gemma4';
import { glm4MoeFamily } from './families/glm4Moe';
import { glm4MoeLiteFamily } from './families/glm4MoeLite';
import { glmMoeDsaFamily } from './families/glmMoeDsa';
import { glm4vMoeFamily } from './families/glm4vMoe';
import { gptOssFamily } from './families/gptOss';
import { granitemoeFamily } from './families/granitemoe';
import { granitemoeHybridFamily } from './families/granitemoeHybrid';
import { hunyuanV1MoeFamily } from './families/hunyuanV1Moe';
import { hyV3Family } from './families/hyV3';
import { jambaFamily } from './families/jamba';
import { jetmoeFamily } from './families/jetmoe';
import { kimiLinearFamily } from './families/kimiLinear';
import { lfm2MoeFamily } from './families/lfm2Moe';
import { llama4Family } from './families/llama4';
import { longcatFlashFamily } from './families/longcatFlash';
import { mimoV2FlashFamily } from './families/mimoV2Flash';
import { minimaxFamily } from './families/minimax';
import { minimaxM2Family } from './families/minimaxM2';
import { mistral4Family } from './families/mistral4';
import { nemotronHFamily } from './families/nemotronH';
import { mixtralFamily } from './families/mixtral';
import { olmoeFamily } from './families/olmoe';
import { phimoeFamily } from './families/phimoe';
import { qwen2MoeFamily } from './families/qwen2Moe';
import { qwen3_5MoeFamily } from './families/qwen3_5Moe';
import { qwen3MoeFamily } from './families/qwen3Moe';
import { qwen3NextFamily } from './families/qwen3Next';
import { qwen3OmniMoeFamily } from './families/qwen3OmniMoe';
import { qwen3VlMoeFamily } from './families/qwen3VlMoe';
import { step3p5Family } from './families/step3p5';
import { step3p7Family } from './families/step3p7';
import type { FamilySpec } from './types';

/** Mixtral-style: a decoder whose MLP is a softmax top-k over per-expert (or fused) SwiGLU experts. */
const MIXTRAL_STYLE: FamilySpec[] = [
  mixtralFamily,
  qwen2MoeFamily,
  qwen3MoeFamily,
  olmoeFamily,
  flexOlmoFamily,
  granitemoeFamily,
  phimoeFamily,
  jetmoeFamily,
  dbrxFamily,
  ernie45MoeFamily,
  hunyuanV1MoeFamily,
  gptOssFamily,
  llama4Family,
  step3p5Family,
];

/** DeepSeek-style: sigmoid or softmax group-limited routing, shared experts, leading dense layers. */
const DEEPSEEK_STYLE: FamilySpec[] = [deepseekV2Family, deepseekV3Family, glm4MoeFamily, dots1Family];

/** DeepSeek-style descendants of 2026: MLA with a DSA lightning indexer, MLA at GLM sizes, and sigmoid + correction-bias routers. */
const DEEPSEEK_STYLE_2026: FamilySpec[] = [
  deepseekV32Family,
  deepseekV4Family,
  glmMoeDsaFamily,
  glm4MoeLiteFamily,
  mistral4Family,
  longcatFlashFamily,
  minimaxM2Family,
  mimoV2FlashFamily,
  hyV3Family,
  bailingMoeFamily,
  afmoeFamily,
];

/** Hybrids: MoE decoders whose token mixer is Mamba, Gated DeltaNet or lightning attention on some layers. */
const HYBRIDS: FamilySpec[] = [
  qwen3NextFamily,
  granitemoeHybridFamily,
  jambaFamily,
  minimaxFamily,
  qwen3_5MoeFamily,
  nemotronHFamily,
  lfm2MoeFamily,
];

/** Hybrids of 2026 with a DeepSeek-style MoE: Kimi Delta Attention beside MLA. */
const HYBRIDS_2026: FamilySpec[] = [kimiLinearFamily];

/** Multimodal wrappers: a MoE text model under `model.language_model.` beside vision/audio towers counted as their own components. */
const MULTIMODAL: FamilySpec[] = [qwen3VlMoeFamily, gemma4Family, glm4vMoeFamily, qwen3OmniMoeFamily, ernie45VlMoeFamily, step3p7Family];

const ALL: FamilySpec[] = [...MIXTRAL_STYLE, ...DEEPSEEK_STYLE, ...DEEPSEEK_STYLE_2026, ...HYBRIDS, ...HYBRIDS_2026, ...MULTIMODAL];
const BY_TYPE = new Map<string, FamilySpec>();
for (const f of ALL) for (const t of f.modelTypes) BY_TYPE.set(t, f);

/** The family that understands `modelType`, if any. */
export function familyFor(modelType: string): FamilySpec | undefined {
  return BY_TYPE.get(modelType);
}

/** Every model_type with a family. */
export function knownModelTypes(): string[] {
  return [...BY_TYPE.keys()].sort();
}

/** The family whose `id` is `id` (tests and tools look families up by id). */
export function familyById(id: string): FamilySpec | undefined {
  return ALL.find((f) => f.id === id);
}
