/**
 * GPU catalog: one row per card, the only place a GPU's memory or capabilities are written.
 *
 * `memoryGiB` is the total CUDA reports (`torch.cuda.mem_get_info()[1]`, what vLLM logs as
 * `total_gpu_memory`), which is less than the marketed size and less than `nvidia-smi`'s MiB.
 * Sources, per row:
 *  - [log] a vLLM startup log quoting total_gpu_memory (issue named in the row).
 *  - [props] `torch.cuda.get_device_properties(0).total_memory` as commonly reported ⚠ (not
 *    re-measured here: no GPU on this machine; treat as ±1 %).
 *  - compute capability: NVIDIA's CUDA GPUs table (developer.nvidia.com/cuda-gpus).
 *  - bf16 needs compute capability ≥ 8.0 (vllm #1153; ../shared/reference/vllm-qwen2vl-facts.md §7).
 *  - interconnect: NVIDIA product briefs; AWS instance pages for which boards use NVSwitch.
 */

export type Interconnect = "pcie" | "nvlink" | "nvswitch";

export interface Gpu {
  /** Catalog key, also what `target.hosts[].gpu` and `fit --gpu` accept. */
  readonly name: string;
  /** How `nvidia-smi --query-gpu=name` prints it (used by the preflight check on a node). */
  readonly smiName: string;
  readonly memoryGiB: number;
  readonly computeCapability: number;
  /** Peer-to-peer over PCIe between cards of the same host (GeForce drivers disable it). */
  readonly p2p: boolean;
  readonly interconnect: Interconnect;
  /** Architecture family: decides open vs proprietary kernel modules (Turing and newer: open). */
  readonly architecture: "volta" | "turing" | "ampere" | "ada" | "hopper";
  readonly source: string;
}

const rows: readonly Gpu[] = [
  // T4: cc 7.5, 16 GB GDDR6; total_memory 15,835,398,144 B [props].
  {
    name: "T4",
    smiName: "Tesla T4",
    memoryGiB: 14.75,
    computeCapability: 7.5,
    p2p: true,
    interconnect: "pcie",
    architecture: "turing",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
  // A10G (AWS g5): cc 8.6, 24 GB. PyTorch reports "a total capacity of 22.18 GiB" on the same
  // 23,028 MiB GA102 board (A10: OpenBMB/MiniCPM-V #640; nvidia-smi 23028MiB for the A10G in vllm
  // #9373 and the A10 in vllm #10034) and 22.19–22.20 GiB in A10G out-of-memory messages (issue 11).
  {
    name: "A10G",
    smiName: "NVIDIA A10G",
    memoryGiB: 22.19,
    computeCapability: 8.6,
    p2p: true,
    interconnect: "pcie",
    architecture: "ampere",
    source:
      "torch total capacity in public OOM messages (MiniCPM-V #640, vllm #9373); cc: NVIDIA CUDA GPUs",
  },
  // L4 (AWS g6): cc 8.9, 24 GB; total_memory ≈ 23,580,639,232 B [props].
  {
    name: "L4",
    smiName: "NVIDIA L4",
    memoryGiB: 21.96,
    computeCapability: 8.9,
    p2p: true,
    interconnect: "pcie",
    architecture: "ada",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
  // L40S (AWS g6e): cc 8.9, 48 GB; vLLM logs total_gpu_memory (44.42GiB) [log: vllm #15815].
  {
    name: "L40S",
    smiName: "NVIDIA L40S",
    memoryGiB: 44.42,
    computeCapability: 8.9,
    p2p: true,
    interconnect: "pcie",
    architecture: "ada",
    source: "[log] vllm #15815",
  },
  // V100 16 GB (AWS p3): cc 7.0, NVLink on p3.8xlarge/16xlarge; total_memory 16,945,512,448 B [props].
  {
    name: "V100",
    smiName: "Tesla V100-SXM2-16GB",
    memoryGiB: 15.78,
    computeCapability: 7.0,
    p2p: true,
    interconnect: "nvlink",
    architecture: "volta",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
  // A100 40 GB (AWS p4d, NVSwitch): cc 8.0; total_memory 42,314,694,656 B [props].
  {
    name: "A100-40GB",
    smiName: "NVIDIA A100-SXM4-40GB",
    memoryGiB: 39.41,
    computeCapability: 8.0,
    p2p: true,
    interconnect: "nvswitch",
    architecture: "ampere",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
  // A100 80 GB (AWS p4de, NVSwitch): cc 8.0; total_memory 84,987,740,160 B [props].
  {
    name: "A100-80GB",
    smiName: "NVIDIA A100-SXM4-80GB",
    memoryGiB: 79.15,
    computeCapability: 8.0,
    p2p: true,
    interconnect: "nvswitch",
    architecture: "ampere",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
  // H100 80 GB SXM (AWS p5): cc 9.0; vLLM logs total_gpu_memory 79.22GiB [log: vllm #10511].
  {
    name: "H100",
    smiName: "NVIDIA H100 80GB HBM3",
    memoryGiB: 79.22,
    computeCapability: 9.0,
    p2p: true,
    interconnect: "nvswitch",
    architecture: "hopper",
    source: "[log] vllm #10511",
  },
  // H200 141 GB (AWS p5e/p5en): cc 9.0; total_memory ≈ 150,029,467,648 B [props].
  {
    name: "H200",
    smiName: "NVIDIA H200",
    memoryGiB: 139.72,
    computeCapability: 9.0,
    p2p: true,
    interconnect: "nvswitch",
    architecture: "hopper",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
  // The seed's consumer cards. GeForce drivers disable PCIe P2P; an NVLink bridge is optional.
  // RTX 2080: 8 GB (the seed says 12 GB: wrong, ../shared/seed/README.md); cc 7.5.
  {
    name: "RTX-2080",
    smiName: "NVIDIA GeForce RTX 2080",
    memoryGiB: 7.79,
    computeCapability: 7.5,
    p2p: false,
    interconnect: "pcie",
    architecture: "turing",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
  // RTX 2080 Ti: 11 GB; cc 7.5.
  {
    name: "RTX-2080-Ti",
    smiName: "NVIDIA GeForce RTX 2080 Ti",
    memoryGiB: 10.76,
    computeCapability: 7.5,
    p2p: false,
    interconnect: "pcie",
    architecture: "turing",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
  // RTX 3090: 24 GB; cc 8.6; vLLM logs total_gpu_memory=23.58GiB [log: vllm #10517].
  {
    name: "RTX-3090",
    smiName: "NVIDIA GeForce RTX 3090",
    memoryGiB: 23.58,
    computeCapability: 8.6,
    p2p: false,
    interconnect: "pcie",
    architecture: "ampere",
    source: "[log] vllm #10517",
  },
  // RTX 4090: 24 GB; cc 8.9; total_memory 25,393,692,672 B [props].
  {
    name: "RTX-4090",
    smiName: "NVIDIA GeForce RTX 4090",
    memoryGiB: 23.65,
    computeCapability: 8.9,
    p2p: false,
    interconnect: "pcie",
    architecture: "ada",
    source: "[props] ⚠; cc: NVIDIA CUDA GPUs",
  },
];

export const GPUS: ReadonlyMap<string, Gpu> = new Map(rows.map((g) => [g.name, g]));
export const GPU_NAMES = rows.map((g) => g.name) as [string, ...string[]];

export function supportsBf16(gpu: Pick<Gpu, "computeCapability">): boolean {
  return gpu.computeCapability >= 8.0;
}

/** A card outside the catalog, described by the user (`fit --gpu-memory-gib`). */
export function customGpu(memoryGiB: number, computeCapability = 8.0): Gpu {
  return {
    name: `custom-${memoryGiB}GiB`,
    smiName: "",
    memoryGiB,
    computeCapability,
    p2p: false,
    interconnect: "pcie",
    architecture: computeCapability >= 9 ? "hopper" : computeCapability >= 8 ? "ampere" : "turing",
    source: "given on the command line",
  };
}
