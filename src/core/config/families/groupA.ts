import type { FamilySpec } from '../types';

/** Families: mixtral, qwen2_moe, qwen3_moe, qwen3_next, olmoe, flex_olmo, granitemoe, phimoe, jetmoe, jamba, minimax. */
export const GROUP_A_FAMILIES: FamilySpec[] = [];
