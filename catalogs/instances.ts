/**
 * AWS GPU instance catalog: one row per type.
 *
 * Sources: AWS Batch "GPU instances" page and the EC2 accelerated-computing instance pages
 * (GPU model/count, vCPU, memory, network, EFA); torchx named_resources_aws.py (vCPU/memory);
 * ../shared/reference/aws-nvidia-pulumi-facts.md §1.
 * Prices: on-demand, us-east-1, Linux, a dated default (PRICES_AS_OF). g5.xlarge $1.006 and
 * g6e.48xlarge $30.131 and p5en.48xlarge $63.296 are from the reference file; the others are
 * AWS's published on-demand prices as last seen ⚠ — P4/P5 were cut in June 2025, so those rows
 * are the post-cut figures ⚠. Prices drift: override per stack with `target.pricePerHourUsd`.
 */

export const PRICES_AS_OF = "2026-11";

export interface InstanceType {
  readonly name: string;
  /** Key into the GPU catalog. */
  readonly gpu: string;
  readonly gpuCount: number;
  readonly vcpu: number;
  readonly memoryGiB: number;
  /** Network bandwidth as AWS states it ("up to" figures are burst). */
  readonly networkGbps: number;
  readonly networkUpTo: boolean;
  /** Number of EFA-capable network cards; 0 = no EFA. */
  /**
   * EFA interfaces the type takes: one per network card on multi-card types (p4d 4, p5 32), one
   * for the others that support EFA, 0 without EFA. AWS, "Supported instance types" for EFA and
   * "Network cards" (docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa.html, using-eni.html).
   */
  readonly efaInterfaces: number;
  readonly onDemandUsdPerHour: number;
  /** Boards whose GPUs sit on NVSwitch need Fabric Manager at the driver's exact version. */
  readonly nvswitch: boolean;
}

const rows: readonly InstanceType[] = [
  {
    name: "g4dn.xlarge",
    gpu: "T4",
    gpuCount: 1,
    vcpu: 4,
    memoryGiB: 16,
    networkGbps: 25,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 0.526,
    nvswitch: false,
  },
  {
    name: "g4dn.2xlarge",
    gpu: "T4",
    gpuCount: 1,
    vcpu: 8,
    memoryGiB: 32,
    networkGbps: 25,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 0.752,
    nvswitch: false,
  },
  {
    name: "g4dn.4xlarge",
    gpu: "T4",
    gpuCount: 1,
    vcpu: 16,
    memoryGiB: 64,
    networkGbps: 25,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 1.204,
    nvswitch: false,
  },
  {
    name: "g4dn.12xlarge",
    gpu: "T4",
    gpuCount: 4,
    vcpu: 48,
    memoryGiB: 192,
    networkGbps: 50,
    networkUpTo: false,
    efaInterfaces: 1,
    onDemandUsdPerHour: 3.912,
    nvswitch: false,
  },
  {
    name: "g5.xlarge",
    gpu: "A10G",
    gpuCount: 1,
    vcpu: 4,
    memoryGiB: 16,
    networkGbps: 10,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 1.006,
    nvswitch: false,
  },
  {
    name: "g5.2xlarge",
    gpu: "A10G",
    gpuCount: 1,
    vcpu: 8,
    memoryGiB: 32,
    networkGbps: 10,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 1.212,
    nvswitch: false,
  },
  {
    name: "g5.4xlarge",
    gpu: "A10G",
    gpuCount: 1,
    vcpu: 16,
    memoryGiB: 64,
    networkGbps: 25,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 1.624,
    nvswitch: false,
  },
  {
    name: "g5.12xlarge",
    gpu: "A10G",
    gpuCount: 4,
    vcpu: 48,
    memoryGiB: 192,
    networkGbps: 40,
    networkUpTo: false,
    efaInterfaces: 1,
    onDemandUsdPerHour: 5.672,
    nvswitch: false,
  },
  {
    name: "g5.24xlarge",
    gpu: "A10G",
    gpuCount: 4,
    vcpu: 96,
    memoryGiB: 384,
    networkGbps: 50,
    networkUpTo: false,
    efaInterfaces: 1,
    onDemandUsdPerHour: 8.144,
    nvswitch: false,
  },
  {
    name: "g5.48xlarge",
    gpu: "A10G",
    gpuCount: 8,
    vcpu: 192,
    memoryGiB: 768,
    networkGbps: 100,
    networkUpTo: false,
    efaInterfaces: 1,
    onDemandUsdPerHour: 16.288,
    nvswitch: false,
  },
  {
    name: "g6.xlarge",
    gpu: "L4",
    gpuCount: 1,
    vcpu: 4,
    memoryGiB: 16,
    networkGbps: 10,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 0.8048,
    nvswitch: false,
  },
  {
    name: "g6.12xlarge",
    gpu: "L4",
    gpuCount: 4,
    vcpu: 48,
    memoryGiB: 192,
    networkGbps: 40,
    networkUpTo: false,
    efaInterfaces: 1,
    onDemandUsdPerHour: 4.6016,
    nvswitch: false,
  },
  {
    name: "g6.48xlarge",
    gpu: "L4",
    gpuCount: 8,
    vcpu: 192,
    memoryGiB: 768,
    networkGbps: 100,
    networkUpTo: false,
    efaInterfaces: 1,
    onDemandUsdPerHour: 13.3504,
    nvswitch: false,
  },
  {
    name: "g6e.xlarge",
    gpu: "L40S",
    gpuCount: 1,
    vcpu: 4,
    memoryGiB: 32,
    networkGbps: 20,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 1.861,
    nvswitch: false,
  },
  {
    name: "g6e.12xlarge",
    gpu: "L40S",
    gpuCount: 4,
    vcpu: 48,
    memoryGiB: 384,
    networkGbps: 100,
    networkUpTo: false,
    efaInterfaces: 1,
    onDemandUsdPerHour: 10.49264,
    nvswitch: false,
  },
  {
    name: "g6e.24xlarge",
    gpu: "L40S",
    gpuCount: 4,
    vcpu: 96,
    memoryGiB: 768,
    networkGbps: 200,
    networkUpTo: false,
    efaInterfaces: 2,
    onDemandUsdPerHour: 15.06559,
    nvswitch: false,
  },
  {
    name: "g6e.48xlarge",
    gpu: "L40S",
    gpuCount: 8,
    vcpu: 192,
    memoryGiB: 1536,
    networkGbps: 400,
    networkUpTo: false,
    efaInterfaces: 4,
    onDemandUsdPerHour: 30.131,
    nvswitch: false,
  },
  {
    name: "p3.2xlarge",
    gpu: "V100",
    gpuCount: 1,
    vcpu: 8,
    memoryGiB: 61,
    networkGbps: 10,
    networkUpTo: true,
    efaInterfaces: 0,
    onDemandUsdPerHour: 3.06,
    nvswitch: false,
  },
  {
    name: "p3.8xlarge",
    gpu: "V100",
    gpuCount: 4,
    vcpu: 32,
    memoryGiB: 244,
    networkGbps: 10,
    networkUpTo: false,
    efaInterfaces: 0,
    onDemandUsdPerHour: 12.24,
    nvswitch: false,
  },
  {
    name: "p3.16xlarge",
    gpu: "V100",
    gpuCount: 8,
    vcpu: 64,
    memoryGiB: 488,
    networkGbps: 25,
    networkUpTo: false,
    efaInterfaces: 0,
    onDemandUsdPerHour: 24.48,
    nvswitch: false,
  },
  {
    name: "p4d.24xlarge",
    gpu: "A100-40GB",
    gpuCount: 8,
    vcpu: 96,
    memoryGiB: 1152,
    networkGbps: 400,
    networkUpTo: false,
    efaInterfaces: 4,
    onDemandUsdPerHour: 21.96,
    nvswitch: true,
  },
  {
    name: "p4de.24xlarge",
    gpu: "A100-80GB",
    gpuCount: 8,
    vcpu: 96,
    memoryGiB: 1152,
    networkGbps: 400,
    networkUpTo: false,
    efaInterfaces: 4,
    onDemandUsdPerHour: 27.45,
    nvswitch: true,
  },
  {
    name: "p5.48xlarge",
    gpu: "H100",
    gpuCount: 8,
    vcpu: 192,
    memoryGiB: 2048,
    networkGbps: 3200,
    networkUpTo: false,
    efaInterfaces: 32,
    onDemandUsdPerHour: 55.04,
    nvswitch: true,
  },
  {
    name: "p5e.48xlarge",
    gpu: "H200",
    gpuCount: 8,
    vcpu: 192,
    memoryGiB: 2048,
    networkGbps: 3200,
    networkUpTo: false,
    efaInterfaces: 32,
    onDemandUsdPerHour: 60.0,
    nvswitch: true,
  },
  {
    name: "p5en.48xlarge",
    gpu: "H200",
    gpuCount: 8,
    vcpu: 192,
    memoryGiB: 2048,
    networkGbps: 3200,
    networkUpTo: false,
    efaInterfaces: 16,
    onDemandUsdPerHour: 63.296,
    nvswitch: true,
  },
];

export const INSTANCE_TYPES: ReadonlyMap<string, InstanceType> = new Map(
  rows.map((r) => [r.name, r]),
);
export const INSTANCE_TYPE_NAMES = rows.map((r) => r.name) as [string, ...string[]];

/**
 * The EC2 vCPU quota a launch draws on (Service Quotas, service "ec2"): on-demand quotas per
 * family ("Running On-Demand G and VT instances", L-DB2E81BA; "Running On-Demand P instances",
 * L-417A185B) and the spot ones ("All G and VT Spot Instance Requests", "All P Spot Instance
 * Requests"; AWS using-spot-limits.html). New accounts often start at 0 for G, VT and P: a launch
 * beyond the quota fails with VcpuLimitExceeded after the network is already made.
 */
export function vcpuQuota(instanceType: string, spot: boolean): { name: string; code?: string } {
  const family = /^p/.test(instanceType) ? "P" : "G and VT";
  if (spot) return { name: `All ${family} Spot Instance Requests` };
  return family === "P"
    ? { name: "Running On-Demand P instances", code: "L-417A185B" }
    : { name: "Running On-Demand G and VT instances", code: "L-DB2E81BA" };
}
