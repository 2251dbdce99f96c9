/**
 * Refusals of inputs that parse but cannot work once machines exist (issue 21): each combines
 * facts the schema checks one at a time. Every problem into `issues` with its path, the value and
 * what is allowed; cautions into `warnings`. Pure, except `fileExists`, which the caller supplies.
 */
import { AMIS } from "../catalogs/amis";
import { INSTANCE_TYPES } from "../catalogs/instances";
import { MODELS, awqVariantOf, type ModelSpec } from "../catalogs/models";
import type { Gpu } from "../catalogs/gpus";
import { vllmDefaults, type VllmFeatures } from "../catalogs/vllm";
import { exposure } from "../config/cidr";
import type { Issue } from "../config/errors";
import { secretSource, type StackConfig } from "../config/schema";
import { isLoopback } from "../config/text";
import { effectiveMaxPixels, maxImageTokens, type Dtype } from "./memory";
import { extraFlags } from "./vllm-args";

/**
 * An API reachable from any CIDR needs an API key: vLLM without --api-key answers anyone who can
 * reach the port, and a narrow CIDR is still an office, a VPN or a cloud range full of others.
 * (The world-wide case is checkNetworkAndSecrets's, which also wants allowPublicApi.)
 */
export function checkApiKeyForAnyCidr(c: StackConfig, issues: Issue[]): void {
  if (c.network.apiCidrs.length === 0 || c.secrets.apiKey) return;
  if (exposure(c.network.apiCidrs).open) return;
  issues.push({
    path: "secrets.apiKey",
    value: undefined,
    message: `is required when network.apiCidrs opens the API (${c.network.apiCidrs.join(", ")}): without it vLLM answers everyone those addresses hold; set it as ${'"config:apiKey"'} (pulumi config set --secret apiKey <value>), or leave apiCidrs empty and reach the API through the tunnel`,
  });
}

/**
 * `file:` secrets are read on the machine that runs `pulumi up`, after resources are registered:
 * a missing file would end the run with a raw ENOENT half-way. Checked when the caller can look
 * (the Pulumi program and `npm run plan`), before anything exists.
 */
export function checkSecretFiles(
  c: StackConfig,
  fileExists: ((path: string) => boolean) | undefined,
  issues: Issue[],
): void {
  if (!fileExists) return;
  for (const key of ["hfToken", "apiKey"] as const) {
    const ref = c.secrets[key];
    const source = ref ? secretSource(ref) : undefined;
    if (source?.kind !== "file" || fileExists(source.name)) continue;
    issues.push({
      path: `secrets.${key}`,
      value: ref,
      message: `names ${source.name}, which is not a readable file on this machine (file: secrets are read where pulumi up runs); create it (one line, the secret, mode 600) or use "config:<key>" (pulumi config set --secret <key> <value>)`,
    });
  }
}

/**
 * Hosts that SSH or the cluster cannot tell apart or reach: the same address twice, a loopback
 * address that the other members would take for themselves, the API on the SSH port.
 */
export function checkHostAddresses(c: StackConfig, issues: Issue[]): void {
  const t = c.target;
  if (t.kind !== "hosts") return;
  const seen = new Map<string, number>();
  const seenPrivate = new Map<string, number>();
  const perReplica = t.replicas > 0 ? t.hosts.length / t.replicas : t.hosts.length;
  t.hosts.forEach((h, i) => {
    const key = `${h.address.toLowerCase()}:${h.port}`;
    const first = seen.get(key);
    if (first !== undefined)
      issues.push({
        path: `target.hosts[${i}].address`,
        value: h.address,
        message: `is hosts[${first}]'s address and port too: one machine would be provisioned as two nodes; give each host once`,
      });
    else seen.set(key, i);
    const inside = (h.privateAddress ?? h.address).toLowerCase();
    const firstPrivate = seenPrivate.get(inside);
    if (first === undefined && firstPrivate !== undefined)
      issues.push({
        path: h.privateAddress ? `target.hosts[${i}].privateAddress` : `target.hosts[${i}].address`,
        value: h.privateAddress ?? h.address,
        message: `is the address hosts[${firstPrivate}] has inside the cluster (privateAddress, or address when it has none): Ray and NCCL would reach one machine for both; give each host its own`,
      });
    else seenPrivate.set(inside, i);
    if (perReplica > 1 && isLoopback(inside))
      issues.push({
        path: h.privateAddress ? `target.hosts[${i}].privateAddress` : `target.hosts[${i}].address`,
        value: h.privateAddress ?? h.address,
        message: `is a loopback address, but the other members of the group reach this host there for Ray and NCCL (they would reach themselves); give its address on the network they share (privateAddress, if SSH goes elsewhere)`,
      });
    if (h.port === c.vllm.port)
      issues.push({
        path: "vllm.port",
        value: c.vllm.port,
        message: `is hosts[${i}] (${h.name})'s SSH port: vLLM could not bind it (or would take SSH's place); allowed: any port ≥ 1024 other than ${h.port} and the deployment's own (e.g. 8000)`,
      });
  });
}

/**
 * EC2 Capacity Blocks for ML: the types they are sold for (EC2 User Guide, "Capacity Blocks for
 * ML": p4d, p4de, p5, p5e, p5en, p6 and Trainium), of those in the instance catalog.
 */
const CAPACITY_BLOCK_TYPES = [
  "p4d.24xlarge",
  "p4de.24xlarge",
  "p5.48xlarge",
  "p5e.48xlarge",
  "p5en.48xlarge",
];

/** EC2's lowest spot price (SpotPrice: "Valid Range: Minimum value of 0.001"). */
export const MIN_SPOT_PRICE_USD = 0.001;

/**
 * What EC2 or the provider refuse after `pulumi up` has begun: a zone letter no region has, a certificate of another region, a spot price under EC2's floor, a Capacity Block on
 * a type that has none, the driver left out on an image without one.
 */
export function checkAwsTarget(c: StackConfig, issues: Issue[]): void {
  const t = c.target;
  if (t.kind !== "aws") return;
  // The most zones a region has is six (us-east-1a–f; EC2 "Regions and Zones"); letters differ per
  // account, but none goes past f.
  if (t.availabilityZone && !/[a-f]$/.test(t.availabilityZone))
    issues.push({
      path: "target.availabilityZone",
      value: t.availabilityZone,
      message: `no region has a zone "${t.availabilityZone.slice(-1)}" (the most is six, a–f, in us-east-1); allowed: ${t.region}a, ${t.region}b, … as \`aws ec2 describe-availability-zones --region ${t.region}\` lists them, or leave it out (the first zone that offers ${t.instanceType})`,
    });
  const arn = c.network.certificateArn;
  const arnRegion = arn?.split(":")[3];
  if (arn && arnRegion && arnRegion !== t.region)
    issues.push({
      path: "network.certificateArn",
      value: arn,
      message: `is a certificate of ${arnRegion}, but a load balancer takes ACM certificates of its own region only; allowed: a certificate in ${t.region} (request or import it there)`,
    });
  const price = t.spot?.enabled ? t.spot.maxPriceUsdPerHour : undefined;
  if (price !== undefined && price < MIN_SPOT_PRICE_USD)
    issues.push({
      path: "target.spot.maxPriceUsdPerHour",
      value: price,
      message: `is below EC2's lowest spot price, USD ${MIN_SPOT_PRICE_USD} per hour; allowed: ≥ ${MIN_SPOT_PRICE_USD}, or leave it out (the on-demand price is the ceiling)`,
    });
  if (t.capacityBlock && !CAPACITY_BLOCK_TYPES.includes(t.instanceType))
    issues.push({
      path: "target.capacityBlock",
      value: true,
      message: `${t.instanceType} is not sold as Capacity Blocks for ML; allowed types: ${CAPACITY_BLOCK_TYPES.filter((n) => INSTANCE_TYPES.has(n)).join(", ")} (or an On-Demand Capacity Reservation: capacityBlock false)`,
    });
  if (!c.provisioning.installDriver && !t.amiId && !AMIS[t.ami].nvidiaPreinstalled)
    issues.push({
      path: "provisioning.installDriver",
      value: false,
      message: `is false, but ${t.ami} has no NVIDIA driver: the driver step would refuse on every node after launch; set installDriver: true, or target.ami: dlami-ubuntu-22.04 (driver preinstalled)`,
    });
}

/**
 * A custom model vLLM cannot build: its Qwen2 decoder derives the head size as hidden // heads
 * (vllm/model_executor/models/qwen2.py, Qwen2Attention), experts per token beyond the experts, MoE
 * on a dense architecture or none on the MoE one, AWQ other than 4-bit (awq.py: "Currently, only
 * 4-bit weight quantization is supported for AWQ"), FP8 that is not 8-bit.
 */
export function checkCustomModel(c: StackConfig, issues: Issue[]): void {
  const m = c.model.custom;
  if (!m) return;
  const qwen2 =
    m.architecture === "Qwen2VLForConditionalGeneration" ||
    m.architecture === "Qwen2_5_VLForConditionalGeneration";
  if (qwen2 && m.headDim !== undefined && m.headDim * m.attentionHeads !== m.hiddenSize)
    issues.push({
      path: "model.custom.headDim",
      value: m.headDim,
      message: `${m.architecture}'s attention takes the head size as hiddenSize / attentionHeads (${m.hiddenSize} / ${m.attentionHeads}) and ignores head_dim, so vLLM would not load these weights; allowed: ${Number.isInteger(m.hiddenSize / m.attentionHeads) ? m.hiddenSize / m.attentionHeads : "a headDim with headDim × attentionHeads = hiddenSize"} (or leave it out)`,
    });
  const moeArch = m.architecture === "Qwen3VLMoeForConditionalGeneration";
  if (m.moe && !moeArch)
    issues.push({
      path: "model.custom.moe",
      value: "{…}",
      message: `${m.architecture} is a dense architecture: vLLM builds no experts for it; allowed: architecture Qwen3VLMoeForConditionalGeneration with moe, or no moe`,
    });
  if (moeArch && !m.moe)
    issues.push({
      path: "model.custom.moe",
      value: undefined,
      message:
        "is required by Qwen3VLMoeForConditionalGeneration: experts, activeExperts, expertIntermediateSize (config.json num_experts, num_experts_per_tok, moe_intermediate_size)",
    });
  if (m.moe && m.moe.activeExperts > m.moe.experts)
    issues.push({
      path: "model.custom.moe.activeExperts",
      value: m.moe.activeExperts,
      message: `exceeds the ${m.moe.experts} experts; allowed: 1–${m.moe.experts}`,
    });
  const q = m.quantization;
  if (q?.method === "awq" && q.bits !== 4)
    issues.push({
      path: "model.custom.quantization.bits",
      value: q.bits,
      message:
        'vLLM\'s AWQ is 4-bit only ("Currently, only 4-bit weight quantization is supported for AWQ"); allowed: 4, or method gptq / compressed-tensors for 8-bit',
    });
  if (q?.method === "fp8" && q.bits !== 8)
    issues.push({
      path: "model.custom.quantization.bits",
      value: q.bits,
      message: "FP8 is 8 bits per weight; allowed: 8",
    });
}

/**
 * The revision is another catalog model's known commit: the model id was changed and the pin kept,
 * and that commit does not exist in the new repository (the weights step fails on every node).
 */
export function checkRevisionOwner(c: StackConfig, issues: Issue[]): void {
  const repo = c.model.id ?? c.model.custom?.name;
  if (!repo) return;
  const owner = [...MODELS.values()].find(
    (m) => m.knownRevision === c.model.revision && m.id !== repo,
  );
  const own = MODELS.get(repo)?.knownRevision;
  if (!owner) return;
  issues.push({
    path: "model.revision",
    value: c.model.revision,
    message: `is a commit of ${owner.id}, not of ${repo} (the model was changed and the pin kept): the weights step would find no such commit; pin a commit of ${repo}${own ? ` such as "${own}"` : ` (git ls-remote https://huggingface.co/${repo} refs/heads/main)`}`,
  });
}

/**
 * One image at the stack's maxPixels must fit the context: the readiness gate's image is small and
 * passes, and every full-size image fails in production.
 */
export function checkOneImageFits(c: StackConfig, m: ModelSpec, issues: Issue[]): void {
  const v = c.vllm;
  if (!m.vision || v.imageLimit === 0) return;
  const maxPixels = effectiveMaxPixels(v, m.vision);
  const perImage = maxImageTokens(m.vision, maxPixels);
  if (perImage + 2 <= v.maxModelLen) return;
  const unit = m.vision.patchSize * m.vision.spatialMergeSize;
  const side = Math.floor(Math.sqrt(Math.max(1, v.maxModelLen - 256)));
  issues.push({
    path: "vllm.maxModelLen",
    value: v.maxModelLen,
    message: `one image at maxPixels ${maxPixels} is ${perImage} visual tokens, more than the whole context: every full-size image would be refused (the readiness image is small and would pass); raise vllm.maxModelLen to ≥ ${perImage + 256}, or set vllm.maxPixels ≤ ${(side * unit) ** 2}`,
  });
}

/**
 * Scheduling flags in extraArgs against the budgets the plan renders: with chunked prefill off a
 * prompt must fit one batch (SchedulerConfig: "max_num_batched_tokens … is smaller than
 * max_model_len"), and with chunked multimodal input off one image must (encoder budget: "Chunked
 * MM input disabled but max_tokens_per_mm_item … is larger than max_num_batched_tokens").
 */
export function checkChunking(
  c: StackConfig,
  m: ModelSpec,
  gpu: Gpu,
  features: VllmFeatures | undefined,
  issues: Issue[],
): void {
  if (!features || features.engine !== "v1") return;
  const v = c.vllm;
  const flags = extraFlags(v.extraArgs);
  const d = vllmDefaults(features, gpu.memoryGiB, v.maxModelLen, gpu.name, Boolean(m.vision));
  const budget = v.maxNumBatchedTokens ?? d.maxNumBatchedTokens;
  const from = v.maxNumBatchedTokens !== undefined ? "" : ", vLLM's default here";
  // Only a budget the stack sets: without one, vLLM sizes the batch to the context when chunked
  // prefill is off (SchedulerConfig: max(max_model_len, default)).
  const noChunked = flags.find((f) => f.flag === "--no-enable-chunked-prefill");
  if (noChunked && v.maxNumBatchedTokens !== undefined && v.maxNumBatchedTokens < v.maxModelLen)
    issues.push({
      path: `vllm.extraArgs[${noChunked.index}]`,
      value: noChunked.text,
      message: `turns chunked prefill off, so a whole prompt must fit one batch, but vllm.maxNumBatchedTokens (${v.maxNumBatchedTokens}) < maxModelLen (${v.maxModelLen}): vLLM's SchedulerConfig refuses to start; set vllm.maxNumBatchedTokens ≥ ${v.maxModelLen}, or drop the flag`,
    });
  const noMmChunks = flags.find((f) => f.flag === "--disable-chunked-mm-input");
  if (noMmChunks && m.vision && v.imageLimit > 0) {
    const perImage = maxImageTokens(m.vision, effectiveMaxPixels(v, m.vision));
    if (budget < perImage)
      issues.push({
        path: `vllm.extraArgs[${noMmChunks.index}]`,
        value: noMmChunks.text,
        message: `keeps each image in one batch, but one image at maxPixels is ${perImage} tokens > max_num_batched_tokens (${budget}${from}): vLLM refuses to start ("Chunked MM input disabled but max_tokens_per_mm_item … is larger than max_num_batched_tokens"); set vllm.maxNumBatchedTokens ≥ ${perImage}, lower vllm.maxPixels, or drop the flag`,
      });
  }
}

/**
 * Qwen2-family weights are trained in bf16 and overflow in fp16: generation degenerates into runs
 * of "!" (NaN logits). huggingface/transformers#33294 (Qwen2-VL in fp16: "only exclamation marks
 * were generated"), vllm-project/vllm#14126 (Qwen 2.5 in vLLM: "all !!!! outputs"), QwenLM/Qwen3#761
 * (Qwen2-7B fp16 "outputs only exclamation marks"; the maintainer: "if you could run with
 * bfloat16, please run with bfloat16"). Said before anything exists, with the ways out.
 */
export function checkHalfPrecision(
  m: ModelSpec,
  gpu: Gpu,
  dtype: Dtype | undefined,
  warnings: string[],
): void {
  const qwen2 =
    m.architecture === "Qwen2VLForConditionalGeneration" ||
    m.architecture === "Qwen2_5_VLForConditionalGeneration";
  if (!qwen2 || dtype !== "float16" || m.quantization || m.torchDtype !== "bfloat16") return;
  warnings.push(
    `${m.id} runs in float16 ("half") on ${gpu.name}, but Qwen2-family weights are bf16 and overflow in fp16: answers can come back as runs of "!" (huggingface/transformers#33294, vllm-project/vllm#14126, QwenLM/Qwen3#761: "please run with bfloat16"). On a card without bf16 serve an AWQ/GPTQ variant (made for fp16${awqVariantOf(m.id) ? `: ${awqVariantOf(m.id)!.id}` : ""}), float32 if it fits (vllm.dtype: float32), or choose a card with bf16 (compute capability ≥ 8.0: A10G, L4, L40S, A100, H100)`,
  );
}
