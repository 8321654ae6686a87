import type { FamilySpec } from '../types';
import { dbrxFamily } from './dbrx';
import { deepseekV2Family } from './deepseekV2';
import { deepseekV3Family } from './deepseekV3';
import { dots1Family } from './dots1';
import { ernie45MoeFamily } from './ernie45Moe';
import { glm4MoeFamily } from './glm4Moe';
import { gptOssFamily } from './gptOss';
import { hunyuanV1MoeFamily } from './hunyuanV1Moe';
import { llama4Family } from './llama4';

/** Families: dbrx, deepseek_v2, deepseek_v3 (kimi_k2), glm4_moe, dots1, ernie4_5_moe, hunyuan_v1_moe, gpt_oss, llama4 / llama4_text. */
export const GROUP_B_FAMILIES: FamilySpec[] = [
  dbrxFamily,
  deepseekV2Family,
  deepseekV3Family,
  glm4MoeFamily,
  dots1Family,
  ernie45MoeFamily,
  hunyuanV1MoeFamily,
  gptOssFamily,
  llama4Family,
];
