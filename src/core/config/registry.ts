import { GROUP_A_FAMILIES } from './families/groupA';
import { GROUP_B_FAMILIES } from './families/groupB';
import type { FamilySpec } from './types';

const ALL: FamilySpec[] = [...GROUP_A_FAMILIES, ...GROUP_B_FAMILIES];
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
