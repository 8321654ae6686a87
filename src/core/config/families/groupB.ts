import type { FamilySpec } from '../types';

/** Families: dbrx, deepseek_v2, deepseek_v3 (kimi_k2), glm4_moe, dots1, ernie4_5_moe, hunyuan_v1_moe, gpt_oss, llama4 / llama4_text. */
export const GROUP_B_FAMILIES: FamilySpec[] = [];
