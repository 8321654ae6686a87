/**
 * ggml tensor types as GGUF stores them: the id is `enum ggml_type` in ggml/include/ggml.h, and
 * (block elements, bytes per block) are `type_traits[].blck_size` / `.type_size` in ggml/src/ggml.c
 * (the sizes of the block structs in ggml/src/ggml-common.h). test/fixtures/gguf/types.json holds the
 * same table as printed by a program compiled against ggml's headers, and the tests compare them.
 */
export interface GgmlType {
  id: number;
  name: string;
  /** Elements per block (1 for plain types, 32 or 256 for quantized ones). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
  /** Bits per element, for display (typeSize × 8 / blockSize). */
  bitsPerElement: number;
}

const RAW: [number, string, number, number][] = [
  [0, 'F32', 1, 4],
  [1, 'F16', 1, 2],
  [2, 'Q4_0', 32, 18],
  [3, 'Q4_1', 32, 20],
  [6, 'Q5_0', 32, 22],
  [7, 'Q5_1', 32, 24],
  [8, 'Q8_0', 32, 34],
  [9, 'Q8_1', 32, 36],
  [10, 'Q2_K', 256, 84],
  [11, 'Q3_K', 256, 110],
  [12, 'Q4_K', 256, 144],
  [13, 'Q5_K', 256, 176],
  [14, 'Q6_K', 256, 210],
  [15, 'Q8_K', 256, 292],
  [16, 'IQ2_XXS', 256, 66],
  [17, 'IQ2_XS', 256, 74],
  [18, 'IQ3_XXS', 256, 98],
  [19, 'IQ1_S', 256, 50],
  [20, 'IQ4_NL', 32, 18],
  [21, 'IQ3_S', 256, 110],
  [22, 'IQ2_S', 256, 82],
  [23, 'IQ4_XS', 256, 136],
  [24, 'I8', 1, 1],
  [25, 'I16', 1, 2],
  [26, 'I32', 1, 4],
  [27, 'I64', 1, 8],
  [28, 'F64', 1, 8],
  [29, 'IQ1_M', 256, 56],
  [30, 'BF16', 1, 2],
  [34, 'TQ1_0', 256, 54],
  [35, 'TQ2_0', 256, 66],
  [39, 'MXFP4', 32, 17],
];

/** Every ggml type a GGUF tensor may have, by id. Ids 4, 5 and 31–33, 36–38 were removed from ggml. */
export const GGML_TYPES: ReadonlyMap<number, GgmlType> = new Map(
  RAW.map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize, bitsPerElement: (typeSize * 8) / blockSize }]),
);

/** The same types by name (F32, Q4_K, MXFP4 …). */
export const GGML_TYPES_BY_NAME: ReadonlyMap<string, GgmlType> = new Map([...GGML_TYPES.values()].map((t) => [t.name, t]));

/**
 * Bytes of `numel` elements of a type laid out in rows of `rowLength` (ggml's ne[0]); undefined when
 * a row does not fill whole blocks (ggml refuses such tensors). Exact below 2^53.
 */
export function ggmlBytes(t: GgmlType, numel: number, rowLength: number): number | undefined {
  if (rowLength % t.blockSize !== 0) return undefined;
  return (numel / t.blockSize) * t.typeSize;
}
