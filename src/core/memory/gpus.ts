import { exact } from '../analysis/report';
import type { CustomGpu, GpuSpec } from './types';

const GB = 1e9;
const MiB = 2 ** 20;
const TB = 1e12;
const TFLOPS = 1e12;

// PCIe x16, per direction (PCI-SIG): Gen4 ≈ 32 GB/s, Gen5 ≈ 64 GB/s raw.
const PCIE4 = 32 * GB;
const PCIE5 = 64 * GB;

/**
 * Accelerators from their vendors' data sheets, except memory: `memoryBytes` is the total a CUDA/ROCm
 * process sees — what `nvidia-smi` / `rocm-smi` print as total and what vLLM's
 * `gpu_memory_utilization` is a fraction of — from a published reading of that exact part
 * (`memorySource`). The data sheet's "80GB" stays as `memoryLabel`. HBM parts report close to the
 * label read as GiB (H100: 81,559 MiB = 79.65 GiB = 85.5 × 10^9 B, 6.9 % above 80 × 10^9), GDDR parts
 * close to the label in 10^9 B (L40S: 46,068 MiB = 48.3 × 10^9 B). Where no reading was found
 * (`memoryMeasured: false`) the label is read as 10^9 B, the smaller of the two readings. Bandwidth in B/s, dense
 * (no 2:4 sparsity) tensor throughput in FLOP/s: where a sheet prints only sparse figures, the dense
 * figure is half of it (NVIDIA footnote "with sparsity"). The first alias of the common SXM/OAM part is
 * the bare name ("h100"), so an ambiguous name picks that part.
 */
export const GPU_CATALOG: readonly GpuSpec[] = [
  {
    id: 'h100-sxm', name: 'NVIDIA H100 SXM 80GB', vendor: 'nvidia', memoryBytes: 81559 * MiB, memoryLabel: '80GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "NVIDIA H100 80GB HBM3 … 0MiB / 81559MiB" in NVIDIA/nccl#1264 (driver 550.54.15); same figure in thundergolfer.com/blog/nvidia-gpu-memory-capacity (Modal, nvidia-smi on its fleet) and modal-labs/modal-client#2797',
    bandwidth: 3.35 * TB,
    bf16Flops: 989.5 * TFLOPS, fp8Flops: 1979 * TFLOPS, interconnect: 900 * GB, hostLink: PCIE5,
    aliases: ['h100', 'h100-sxm5', 'h100 sxm', 'h100-80gb'],
    source: 'NVIDIA H100 Tensor Core GPU data sheet (nvidia.com/en-us/data-center/h100): 80 GB HBM3, 3.35 TB/s, BF16 1,979 / FP8 3,958 TFLOPS with sparsity, NVLink 900 GB/s',
  },
  {
    id: 'h100-pcie', name: 'NVIDIA H100 PCIe 80GB', vendor: 'nvidia', memoryBytes: 81559 * MiB, memoryLabel: '80GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "NVIDIA H100 PCIe … 81559MiB": public nvidia-smi outputs found by exact-string search of GitHub code (several repositories, drivers 5xx)',
    bandwidth: 2.0 * TB,
    bf16Flops: 756.5 * TFLOPS, fp8Flops: 1513 * TFLOPS, interconnect: 600 * GB, hostLink: PCIE5,
    aliases: ['h100pcie'],
    source: 'NVIDIA H100 data sheet, PCIe column: 80 GB HBM2e, 2 TB/s, BF16 1,513 / FP8 3,026 TFLOPS with sparsity, NVLink bridge 600 GB/s',
  },
  {
    id: 'h100-nvl', name: 'NVIDIA H100 NVL 94GB', vendor: 'nvidia', memoryBytes: 95830 * MiB, memoryLabel: '94GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "NVIDIA H100 NVL … 95830MiB": public nvidia-smi outputs found by exact-string search of GitHub code (several repositories)',
    bandwidth: 3.9 * TB,
    bf16Flops: 835.5 * TFLOPS, fp8Flops: 1671 * TFLOPS, interconnect: 600 * GB, hostLink: PCIE5,
    aliases: ['h100nvl'],
    source: 'NVIDIA H100 data sheet, NVL column: 94 GB HBM3, 3.9 TB/s, BF16 1,671 / FP8 3,341 TFLOPS with sparsity',
  },
  {
    id: 'h200-sxm', name: 'NVIDIA H200 SXM 141GB', vendor: 'nvidia', memoryBytes: 143771 * MiB, memoryLabel: '141GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "NVIDIA H200 … 143771MiB" in sgl-project/sglang#3196 (driver 550.144.03); same figure in thundergolfer.com/blog/nvidia-gpu-memory-capacity (Modal, nvidia-smi on its fleet) and modal-labs/modal-client#2797',
    bandwidth: 4.8 * TB,
    bf16Flops: 989.5 * TFLOPS, fp8Flops: 1979 * TFLOPS, interconnect: 900 * GB, hostLink: PCIE5,
    aliases: ['h200', 'h200sxm'],
    source: 'NVIDIA H200 Tensor Core GPU data sheet (nvidia.com/en-us/data-center/h200): 141 GB HBM3e, 4.8 TB/s, BF16 1,979 / FP8 3,958 TFLOPS with sparsity, NVLink 900 GB/s',
  },
  {
    id: 'h200-nvl', name: 'NVIDIA H200 NVL 141GB', vendor: 'nvidia', memoryBytes: 141 * GB, memoryLabel: '141GB', memoryMeasured: false,
    memorySource: 'no published nvidia-smi reading of the H200 NVL found: the data sheet\'s 141GB read as 10^9 B (conservative: reporting cards show 0.6–7 % more)',
    bandwidth: 4.8 * TB,
    bf16Flops: 835.5 * TFLOPS, fp8Flops: 1671 * TFLOPS, interconnect: 900 * GB, hostLink: PCIE5,
    aliases: ['h200nvl'],
    source: 'NVIDIA H200 data sheet, NVL column: 141 GB HBM3e, 4.8 TB/s, BF16 1,671 / FP8 3,341 TFLOPS with sparsity',
  },
  {
    id: 'h20', name: 'NVIDIA H20 96GB', vendor: 'nvidia', memoryBytes: 97871 * MiB, memoryLabel: '96GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "NVIDIA H20 … 97871MiB": public nvidia-smi output found by exact-string search of GitHub code',
    bandwidth: 4.0 * TB,
    bf16Flops: 148 * TFLOPS, fp8Flops: 296 * TFLOPS, interconnect: 900 * GB, hostLink: PCIE5,
    aliases: [],
    source: 'NVIDIA HGX H20 product brief: 96 GB HBM3, 4.0 TB/s, BF16 148 / FP8 296 TFLOPS dense, NVLink 900 GB/s',
  },
  {
    id: 'b200', name: 'NVIDIA B200 180GB (HGX/DGX B200)', vendor: 'nvidia', memoryBytes: 183359 * MiB, memoryLabel: '180GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "NVIDIA B200 … 183359MiB" in NVIDIA/TensorRT-LLM#10278 (driver 580.95.05)',
    bandwidth: 8 * TB,
    bf16Flops: 2250 * TFLOPS, fp8Flops: 4500 * TFLOPS, interconnect: 1800 * GB, hostLink: PCIE5,
    aliases: ['b200-sxm', 'dgx-b200', 'hgx-b200'],
    source: 'NVIDIA DGX B200 data sheet: 8 GPUs, 1,440 GB HBM3e, 64 TB/s, FP8 72 PFLOPS and BF16 36 PFLOPS with sparsity (per GPU: 180 GB, 8 TB/s, 4.5 / 2.25 PFLOPS dense), NVLink 5 1.8 TB/s',
  },
  {
    id: 'b300', name: 'NVIDIA B300 288GB (HGX B300, Blackwell Ultra)', vendor: 'nvidia', memoryBytes: 288 * GB, memoryLabel: '288GB', memoryMeasured: false,
    memorySource: 'no published nvidia-smi reading of the B300 found: the data sheet\'s 288GB read as 10^9 B (conservative: reporting cards show 0.6–7 % more)',
    bandwidth: 8 * TB,
    bf16Flops: 2250 * TFLOPS, fp8Flops: 4500 * TFLOPS, interconnect: 1800 * GB, hostLink: PCIE5,
    aliases: ['b300-sxm', 'hgx-b300', 'blackwell-ultra'],
    source: 'NVIDIA HGX B300 platform spec: 8 GPUs, 2.3 TB HBM3e (288 GB each), up to 8 TB/s per GPU, FP8 72 PFLOPS and FP16/BF16 36 PFLOPS with sparsity per 8 GPUs, NVLink 5 1.8 TB/s',
  },
  {
    id: 'gb200', name: 'NVIDIA GB200 186GB (one Blackwell GPU of GB200 NVL72)', vendor: 'nvidia', memoryBytes: 186 * GB, memoryLabel: '186GB', memoryMeasured: false,
    memorySource: 'no published nvidia-smi reading of the GB200 found: the data sheet\'s 186GB read as 10^9 B (conservative: reporting cards show 0.6–7 % more)',
    bandwidth: 8 * TB,
    bf16Flops: 2500 * TFLOPS, fp8Flops: 5000 * TFLOPS, interconnect: 1800 * GB, hostLink: 450 * GB,
    aliases: ['gb200-nvl72', 'gb200nvl72'],
    source: 'NVIDIA GB200 NVL72 spec: 72 GPUs, 13.4 TB HBM3e (186 GB each), 576 TB/s (8 TB/s each), FP8 720 PFLOPS and FP16/BF16 360 PFLOPS with sparsity; NVLink-C2C to Grace 900 GB/s bidirectional',
  },
  {
    id: 'a100-80gb', name: 'NVIDIA A100 SXM 80GB', vendor: 'nvidia', memoryBytes: 81920 * MiB, memoryLabel: '80GB', memoryMeasured: true,
    memorySource: 'nvidia-smi 81920MiB for the A100 80GB in thundergolfer.com/blog/nvidia-gpu-memory-capacity (Modal, nvidia-smi on its fleet) and modal-labs/modal-client#2797',
    bandwidth: 2.039 * TB,
    bf16Flops: 312 * TFLOPS, interconnect: 600 * GB, hostLink: PCIE4,
    aliases: ['a100', 'a100-80', 'a100-sxm', 'a100-sxm-80gb'],
    source: 'NVIDIA A100 Tensor Core GPU data sheet: 80 GB HBM2e, 2,039 GB/s (SXM), BF16 312 TFLOPS dense, NVLink 600 GB/s; no FP8',
  },
  {
    id: 'a100-40gb', name: 'NVIDIA A100 SXM 40GB', vendor: 'nvidia', memoryBytes: 40960 * MiB, memoryLabel: '40GB', memoryMeasured: true,
    memorySource: 'nvidia-smi 40960MiB for the A100 40GB in thundergolfer.com/blog/nvidia-gpu-memory-capacity (Modal, nvidia-smi on its fleet) and modal-labs/modal-client#2797',
    bandwidth: 1.555 * TB,
    bf16Flops: 312 * TFLOPS, interconnect: 600 * GB, hostLink: PCIE4,
    aliases: ['a100-40', 'a100-sxm-40gb'],
    source: 'NVIDIA A100 data sheet: 40 GB HBM2, 1,555 GB/s, BF16 312 TFLOPS dense, NVLink 600 GB/s',
  },
  {
    id: 'l40s', name: 'NVIDIA L40S 48GB', vendor: 'nvidia', memoryBytes: 46068 * MiB, memoryLabel: '48GB', memoryMeasured: true,
    memorySource: 'nvidia-smi 46068MiB for the L40S in thundergolfer.com/blog/nvidia-gpu-memory-capacity (Modal, nvidia-smi on its fleet) and modal-labs/modal-client#2797',
    bandwidth: 864 * GB,
    bf16Flops: 362.05 * TFLOPS, fp8Flops: 733 * TFLOPS, hostLink: PCIE4,
    aliases: [],
    source: 'NVIDIA L40S data sheet: 48 GB GDDR6, 864 GB/s, BF16 362.05 / 733 TFLOPS, FP8 733 / 1,466 TFLOPS (dense / sparse), PCIe Gen4 x16',
  },
  {
    id: 'l4', name: 'NVIDIA L4 24GB', vendor: 'nvidia', memoryBytes: 23034 * MiB, memoryLabel: '24GB', memoryMeasured: true,
    memorySource: 'nvidia-smi 23034MiB for the L4 in thundergolfer.com/blog/nvidia-gpu-memory-capacity (Modal, nvidia-smi on its fleet) and modal-labs/modal-client#2797',
    bandwidth: 300 * GB,
    bf16Flops: 121 * TFLOPS, fp8Flops: 242.5 * TFLOPS, hostLink: PCIE4,
    aliases: [],
    source: 'NVIDIA L4 data sheet: 24 GB GDDR6, 300 GB/s, BF16 242 / FP8 485 TFLOPS with sparsity, PCIe Gen4 x16',
  },
  {
    id: 'a10', name: 'NVIDIA A10 24GB', vendor: 'nvidia', memoryBytes: 23028 * MiB, memoryLabel: '24GB', memoryMeasured: true,
    memorySource: 'nvidia-smi 23028MiB for the A10 in thundergolfer.com/blog/nvidia-gpu-memory-capacity (Modal, nvidia-smi on its fleet) and modal-labs/modal-client#2797',
    bandwidth: 600 * GB,
    bf16Flops: 125 * TFLOPS, hostLink: PCIE4,
    aliases: ['a10g'],
    source: 'NVIDIA A10 data sheet: 24 GB GDDR6, 600 GB/s, BF16 125 TFLOPS dense (250 sparse), PCIe Gen4',
  },
  {
    id: 'rtx-4090', name: 'NVIDIA GeForce RTX 4090 24GB', vendor: 'nvidia', memoryBytes: 24564 * MiB, memoryLabel: '24GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "23859MiB / 24564MiB" on RTX 4090 in vllm-project/vllm#7553',
    bandwidth: 1008 * GB,
    bf16Flops: 165.2 * TFLOPS, fp8Flops: 330.3 * TFLOPS, hostLink: PCIE4,
    aliases: ['4090', 'rtx4090', 'geforce-rtx-4090'],
    source: 'NVIDIA Ada Lovelace architecture whitepaper, RTX 4090: 24 GB GDDR6X, 1,008 GB/s; tensor FP16/BF16 with FP32 accumulate 165.2 TFLOPS, FP8 (FP32 accumulate) 330.3 TFLOPS dense',
  },
  {
    id: 'rtx-5090', name: 'NVIDIA GeForce RTX 5090 32GB', vendor: 'nvidia', memoryBytes: 32607 * MiB, memoryLabel: '32GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "NVIDIA GeForce RTX 5090 … 492MiB / 32607MiB" in noonghunna/club-3090#617 (driver 595.71.05)',
    bandwidth: 1792 * GB,
    bf16Flops: 209.5 * TFLOPS, fp8Flops: 419 * TFLOPS, hostLink: PCIE5,
    aliases: ['5090', 'rtx5090', 'geforce-rtx-5090'],
    source: 'NVIDIA RTX Blackwell GPU architecture whitepaper, RTX 5090: 32 GB GDDR7, 1,792 GB/s; tensor FP16/BF16 with FP32 accumulate 209.5 TFLOPS, FP8 (FP32 accumulate) 419 TFLOPS dense',
  },
  {
    id: 'rtx-pro-6000', name: 'NVIDIA RTX PRO 6000 Blackwell 96GB', vendor: 'nvidia', memoryBytes: 97887 * MiB, memoryLabel: '96GB', memoryMeasured: true,
    memorySource: 'nvidia-smi "NVIDIA RTX PRO 6000 Blac… 97887MiB" (Workstation, Max-Q and Server editions): public nvidia-smi outputs found by exact-string search of GitHub code',
    bandwidth: 1792 * GB,
    bf16Flops: 503.8 * TFLOPS, fp8Flops: 1007.6 * TFLOPS, hostLink: PCIE5,
    aliases: ['rtx-pro-6000-blackwell', 'rtxpro6000', 'pro-6000'],
    source: 'NVIDIA RTX PRO 6000 Blackwell data sheet: 96 GB GDDR7 ECC, 1,792 GB/s, FP4 4 PFLOPS with sparsity; dense BF16/FP8 derived by Blackwell ratios (FP4 sparse ÷ 2 per halving: FP8 1,007.6, BF16 503.8 TFLOPS)',
  },
  {
    id: 'mi300x', name: 'AMD Instinct MI300X 192GB', vendor: 'amd', memoryBytes: 206141652992, memoryLabel: '192GB', memoryMeasured: true,
    memorySource: 'rocm-smi --showmeminfo vram "VRAM Total Memory (B): 206141652992" (SPX, NPS1) in ROCm/legacy-rocm-build#4750',
    bandwidth: 5.3 * TB,
    bf16Flops: 1307.4 * TFLOPS, fp8Flops: 2614.9 * TFLOPS, interconnect: 896 * GB, hostLink: PCIE5,
    aliases: ['mi300', 'mi300x-oam'],
    source: 'AMD Instinct MI300X data sheet: 192 GB HBM3, 5.3 TB/s, BF16 1,307.4 / FP8 2,614.9 TFLOPS dense, Infinity Fabric 896 GB/s peak aggregate, PCIe Gen5 x16',
  },
  {
    id: 'mi325x', name: 'AMD Instinct MI325X 256GB', vendor: 'amd', memoryBytes: 256 * GB, memoryLabel: '256GB', memoryMeasured: false,
    memorySource: 'no published rocm-smi reading of the MI325X found: the data sheet\'s 256GB read as 10^9 B (conservative: reporting cards show 0.6–7 % more)',
    bandwidth: 6 * TB,
    bf16Flops: 1307.4 * TFLOPS, fp8Flops: 2614.9 * TFLOPS, interconnect: 896 * GB, hostLink: PCIE5,
    aliases: ['mi325'],
    source: 'AMD Instinct MI325X data sheet: 256 GB HBM3E, 6 TB/s, BF16 1,307.4 / FP8 2,614.9 TFLOPS dense',
  },
  {
    id: 'mi355x', name: 'AMD Instinct MI355X 288GB', vendor: 'amd', memoryBytes: 288 * GB, memoryLabel: '288GB', memoryMeasured: false,
    memorySource: 'no published rocm-smi reading of the MI355X found: the data sheet\'s 288GB read as 10^9 B (conservative: reporting cards show 0.6–7 % more)',
    bandwidth: 8 * TB,
    bf16Flops: 2516.6 * TFLOPS, fp8Flops: 5033.2 * TFLOPS, interconnect: 1075 * GB, hostLink: PCIE5,
    aliases: ['mi355'],
    source: 'AMD Instinct MI355X data sheet: 288 GB HBM3E, 8 TB/s, FP16/BF16 2.5 PFLOPS and FP8 5.0 PFLOPS dense (2,516.6 / 5,033.2 TFLOPS), Infinity Fabric 1,075 GB/s',
  },
  {
    id: 'mi350x', name: 'AMD Instinct MI350X 288GB', vendor: 'amd', memoryBytes: 288 * GB, memoryLabel: '288GB', memoryMeasured: false,
    memorySource: 'no published rocm-smi reading of the MI350X found: the data sheet\'s 288GB read as 10^9 B (conservative: reporting cards show 0.6–7 % more)',
    bandwidth: 8 * TB,
    bf16Flops: 2306.9 * TFLOPS, fp8Flops: 4613.7 * TFLOPS, interconnect: 1075 * GB, hostLink: PCIE5,
    aliases: ['mi350'],
    source: 'AMD Instinct MI350X data sheet: 288 GB HBM3E, 8 TB/s, FP16/BF16 2.3 PFLOPS and FP8 4.6 PFLOPS dense',
  },
  {
    id: 'gaudi3', name: 'Intel Gaudi 3 128GB (HL-325L OAM)', vendor: 'intel', memoryBytes: 128 * GB, memoryLabel: '128GB', memoryMeasured: false,
    memorySource: 'no published hl-smi reading of the Gaudi 3 found: the data sheet\'s 128GB read as 10^9 B (conservative: reporting cards show 0.6–7 % more)',
    bandwidth: 3.7 * TB,
    bf16Flops: 1835 * TFLOPS, fp8Flops: 1835 * TFLOPS, interconnect: 600 * GB, hostLink: PCIE5,
    aliases: ['gaudi-3', 'gaudi', 'hl-325l'],
    source: 'Intel Gaudi 3 AI Accelerator white paper: 128 GB HBM2e, 3.7 TB/s, MME BF16 and FP8 1,835 TFLOPS, 24 × 200 GbE RoCE (1.2 TB/s bidirectional)',
  },
];

/** "H100 SXM", "h100_sxm", "H100-SXM" → "h100sxm". */
function norm(s: string): string {
  return s.toLowerCase().replace(/[\s_\-./()]+/g, '');
}

/** The catalog with the user's GPUs: an entry with a known id overrides that GPU field by field; others are added. */
export function mergeGpuCatalog(custom: readonly CustomGpu[] = []): GpuSpec[] {
  const out = GPU_CATALOG.map((g) => ({ ...g, aliases: [...g.aliases] }));
  for (const c of custom) {
    const i = out.findIndex((g) => norm(g.id) === norm(c.id));
    if (i >= 0) {
      out[i] = { ...out[i], ...c, aliases: c.aliases ?? out[i].aliases, source: c.source ?? 'user settings (override of the catalog entry)' };
    } else {
      out.push({
        id: c.id,
        name: c.name ?? c.id,
        vendor: c.vendor ?? 'other',
        memoryBytes: c.memoryBytes ?? 0,
        ...(c.memoryLabel !== undefined ? { memoryLabel: c.memoryLabel } : {}),
        ...(c.memorySource !== undefined ? { memorySource: c.memorySource } : {}),
        ...(c.memoryMeasured !== undefined ? { memoryMeasured: c.memoryMeasured } : {}),
        bandwidth: c.bandwidth ?? 0,
        bf16Flops: c.bf16Flops ?? 0,
        ...(c.fp8Flops !== undefined ? { fp8Flops: c.fp8Flops } : {}),
        ...(c.interconnect !== undefined ? { interconnect: c.interconnect } : {}),
        ...(c.hostLink !== undefined ? { hostLink: c.hostLink } : {}),
        aliases: c.aliases ?? [],
        source: c.source ?? 'user settings',
      });
    }
  }
  return out;
}

export interface GpuLookup {
  gpu?: GpuSpec;
  /** Other parts the name could mean (e.g. "h100" → h100-pcie, h100-nvl beside h100-sxm). */
  alternatives: GpuSpec[];
  /** Close matches when nothing matched. */
  suggestions: GpuSpec[];
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

/**
 * Resolves what a user typed: a catalog id, a name or an alias, case- and punctuation-insensitive.
 * An ambiguous prefix ("h100") resolves to the part that carries it as an alias (the common SXM/OAM
 * part) and lists the others.
 */
export function lookupGpu(query: string, custom: readonly CustomGpu[] = []): GpuLookup {
  const all = mergeGpuCatalog(custom);
  const q = norm(query);
  const keys = (g: GpuSpec) => [g.id, g.name, ...g.aliases].map(norm);
  if (!q) return { alternatives: [], suggestions: [] };
  const exact = all.find((g) => keys(g).includes(q));
  const prefixed = all.filter((g) => g !== exact && (norm(g.id).startsWith(q) || g.aliases.some((a) => norm(a).startsWith(q))));
  if (exact) return { gpu: exact, alternatives: prefixed, suggestions: [] };
  if (prefixed.length === 1) return { gpu: prefixed[0], alternatives: [], suggestions: [] };
  if (prefixed.length > 1) return { alternatives: [], suggestions: prefixed };
  // Nothing matched: the closest ids and aliases, and any whose id contains the query's digits ("4080" → 4090).
  const scored = all
    .map((g) => ({ g, d: Math.min(...keys(g).map((k) => editDistance(q, k))) }))
    .sort((a, b) => a.d - b.d);
  const best = scored[0]?.d ?? 99;
  const suggestions = scored.filter((s) => s.d <= Math.max(2, best + 1)).slice(0, 5).map((s) => s.g);
  return { alternatives: [], suggestions };
}

/** The GPU a name or id refers to (see lookupGpu), or undefined. */
export function findGpu(query: string, custom: readonly CustomGpu[] = []): GpuSpec | undefined {
  return lookupGpu(query, custom).gpu;
}

/**
 * Which capacity a sizing uses, in words for hovers, reports and the dashboard:
 * "79.65 GiB usable of NVIDIA H100 SXM 80GB (81,559 MiB as nvidia-smi reports it)", or for a part
 * without a published reading "128 GB read as 10^9 B = 119.21 GiB of Intel Gaudi 3 128GB (no
 * reading of the card found)". Headroom and the runtime overhead come off this figure separately.
 */
export function gpuMemoryNote(gpu: GpuSpec): string {
  const gib = (gpu.memoryBytes / 2 ** 30).toFixed(2);
  const mib = gpu.memoryBytes / 2 ** 20;
  if (gpu.memoryMeasured === false) {
    return `${gib} GiB usable of ${gpu.name}: no nvidia-smi/rocm-smi reading of this card found, its data sheet's ${gpu.memoryLabel ?? ''} read as 10^9 B`.replace(' ,', ',');
  }
  const reported = Number.isInteger(mib) ? `${exact(mib)} MiB as the card reports it` : `${exact(gpu.memoryBytes)} B`;
  return `${gib} GiB usable of ${gpu.name} (${reported})`;
}
