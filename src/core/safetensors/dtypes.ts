/** Storage dtypes that appear in safetensors headers, with their size in bits per element. */
export const DTYPE_BITS = {
  F64: 64,
  F32: 32,
  F16: 16,
  BF16: 16,
  F8_E4M3: 8,
  F8_E5M2: 8,
  F8_E8M0: 8,
  I64: 64,
  I32: 32,
  I16: 16,
  I8: 8,
  U64: 64,
  U32: 32,
  U16: 16,
  U8: 8,
  BOOL: 8,
  C64: 64,
  // Sub-byte formats written by recent safetensors versions (packed, numel must fill whole bytes).
  F6_E2M3: 6,
  F6_E3M2: 6,
  F4: 4,
} as const;

export type Dtype = keyof typeof DTYPE_BITS;

/** Every dtype in DTYPE_BITS order, and each one's index there: the compact code the header readers pass between threads. */
export const DTYPES = Object.keys(DTYPE_BITS) as Dtype[];
export const DTYPE_CODE = new Map<string, number>(DTYPES.map((d, i) => [d, i]));

/** True when `s` names a dtype this reader understands. */
export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BITS, s);
}

/** Bytes taken by `numel` elements of `dtype`, or undefined when sub-byte packing leaves a partial byte. */
export function byteSize(dtype: Dtype, numel: bigint): bigint | undefined {
  const bits = BigInt(DTYPE_BITS[dtype]) * numel;
  return bits % 8n === 0n ? bits / 8n : undefined;
}
