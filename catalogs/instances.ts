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

/** A row of the table: the fields in InstanceType's order. */
function row(
  name: string,
  gpu: string,
  gpuCount: number,
  vcpu: number,
  memoryGiB: number,
  networkGbps: number,
  networkUpTo: boolean,
  efaInterfaces: number,
  onDemandUsdPerHour: number,
  nvswitch: boolean,
): InstanceType {
  return {
    name,
    gpu,
    gpuCount,
    vcpu,
    memoryGiB,
    networkGbps,
    networkUpTo,
    efaInterfaces,
    onDemandUsdPerHour,
    nvswitch,
  };
}

// One line per type: name, GPU, GPUs, vCPUs, memory (GiB), network (Gbps), network "up to"
// (burst), EFA interfaces, on-demand $/h, NVSwitch.
const rows: readonly InstanceType[] = [
  row("g4dn.xlarge", "T4", 1, 4, 16, 25, true, 0, 0.526, false),
  row("g4dn.2xlarge", "T4", 1, 8, 32, 25, true, 0, 0.752, false),
  row("g4dn.4xlarge", "T4", 1, 16, 64, 25, true, 0, 1.204, false),
  row("g4dn.12xlarge", "T4", 4, 48, 192, 50, false, 1, 3.912, false),
  row("g5.xlarge", "A10G", 1, 4, 16, 10, true, 0, 1.006, false),
  row("g5.2xlarge", "A10G", 1, 8, 32, 10, true, 0, 1.212, false),
  row("g5.4xlarge", "A10G", 1, 16, 64, 25, true, 0, 1.624, false),
  row("g5.12xlarge", "A10G", 4, 48, 192, 40, false, 1, 5.672, false),
  row("g5.24xlarge", "A10G", 4, 96, 384, 50, false, 1, 8.144, false),
  row("g5.48xlarge", "A10G", 8, 192, 768, 100, false, 1, 16.288, false),
  row("g6.xlarge", "L4", 1, 4, 16, 10, true, 0, 0.8048, false),
  row("g6.12xlarge", "L4", 4, 48, 192, 40, false, 1, 4.6016, false),
  row("g6.48xlarge", "L4", 8, 192, 768, 100, false, 1, 13.3504, false),
  row("g6e.xlarge", "L40S", 1, 4, 32, 20, true, 0, 1.861, false),
  row("g6e.12xlarge", "L40S", 4, 48, 384, 100, false, 1, 10.49264, false),
  row("g6e.24xlarge", "L40S", 4, 96, 768, 200, false, 2, 15.06559, false),
  row("g6e.48xlarge", "L40S", 8, 192, 1536, 400, false, 4, 30.131, false),
  row("p3.2xlarge", "V100", 1, 8, 61, 10, true, 0, 3.06, false),
  row("p3.8xlarge", "V100", 4, 32, 244, 10, false, 0, 12.24, false),
  row("p3.16xlarge", "V100", 8, 64, 488, 25, false, 0, 24.48, false),
  row("p4d.24xlarge", "A100-40GB", 8, 96, 1152, 400, false, 4, 21.96, true),
  row("p4de.24xlarge", "A100-80GB", 8, 96, 1152, 400, false, 4, 27.45, true),
  row("p5.48xlarge", "H100", 8, 192, 2048, 3200, false, 32, 55.04, true),
  row("p5e.48xlarge", "H200", 8, 192, 2048, 3200, false, 32, 60, true),
  row("p5en.48xlarge", "H200", 8, 192, 2048, 3200, false, 16, 63.296, true),
];

export const INSTANCE_TYPES: ReadonlyMap<string, InstanceType> = new Map(
  rows.map((r) => [r.name, r]),
);
export const INSTANCE_TYPE_NAMES = rows.map((r) => r.name) as [string, ...string[]];

/**
 * The EC2 vCPU quota a launch draws on (Service Quotas, service "ec2"): on-demand quotas per
 * family ("Running On-Demand G and VT instances", L-DB2E81BA; "Running On-Demand P instances",
 * L-417A185B) and the spot ones (AWS using-spot-limits.html: "All G and VT Spot Instance
 * Requests", L-3819A6DF; "All P4, P3 and P2 Spot Instance Requests", L-7212CCBC; "All P5 Spot
 * Instance Requests", looked up by name: no public source gives its code). New accounts often
 * start at 0 for G, VT and P: a launch beyond the quota fails with VcpuLimitExceeded after the
 * network is already made, so `pulumi up` checks it first (components/aws-deployment.ts).
 */
export function vcpuQuota(instanceType: string, spot: boolean): { name: string; code?: string } {
  const p = /^p/.test(instanceType);
  if (spot) {
    if (!p) return { name: "All G and VT Spot Instance Requests", code: "L-3819A6DF" };
    return /^p5/.test(instanceType)
      ? { name: "All P5 Spot Instance Requests" }
      : { name: "All P4, P3 and P2 Spot Instance Requests", code: "L-7212CCBC" };
  }
  return p
    ? { name: "Running On-Demand P instances", code: "L-417A185B" }
    : { name: "Running On-Demand G and VT instances", code: "L-DB2E81BA" };
}
