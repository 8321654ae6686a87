import type { FamilySpec } from '../types';
import { flexOlmoFamily } from './flexOlmo';
import { granitemoeFamily } from './granitemoe';
import { granitemoeHybridFamily } from './granitemoeHybrid';
import { jambaFamily } from './jamba';
import { jetmoeFamily } from './jetmoe';
import { minimaxFamily } from './minimax';
import { mixtralFamily } from './mixtral';
import { olmoeFamily } from './olmoe';
import { phimoeFamily } from './phimoe';
import { qwen2MoeFamily } from './qwen2Moe';
import { qwen3MoeFamily } from './qwen3Moe';
import { qwen3NextFamily } from './qwen3Next';

/** Families: mixtral, qwen2_moe, qwen3_moe, qwen3_next, olmoe, flex_olmo, granitemoe (+ granitemoeshared), granitemoehybrid, phimoe, jetmoe, jamba, minimax. */
export const GROUP_A_FAMILIES: FamilySpec[] = [
  mixtralFamily,
  qwen2MoeFamily,
  qwen3MoeFamily,
  qwen3NextFamily,
  olmoeFamily,
  flexOlmoFamily,
  granitemoeFamily,
  granitemoeHybridFamily,
  phimoeFamily,
  jetmoeFamily,
  jambaFamily,
  minimaxFamily,
];
