#!/usr/bin/env python3
"""Puts a model into the lab's weights mirror with manifest.json in the form provisioning verifies
against (sha256 for the large files, as the hub's LFS oids; git blob sha1 for the small ones):
  - the stand-in (default): a Qwen2-VL-shaped config.json and safetensors-shaped shards of
    deterministic pseudo-random bytes, for the fake engine;
  - --from DIR: a real checkpoint's files (tools/make-tiny-qwen2vl.py's tiny Qwen2-VL, which the
    real vLLM serves), copied; *.safetensors are the large (LFS) files, as on the hub.
Idempotent: an existing complete directory with the same parameters is left as it is."""
import argparse
import hashlib
import json
import os
import random
import shutil
import struct
import sys

CONFIG = {
    "architectures": ["Qwen2VLForConditionalGeneration"],
    "model_type": "qwen2_vl",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "max_position_embeddings": 32768,
    "torch_dtype": "bfloat16",
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
    "_comment": "qwen-vl-deploy lab stand-in: shapes of Qwen2-VL-7B, weights are random bytes",
}


def shard(path, index, size):
    rng = random.Random(index)
    header = json.dumps({f"model.layers.{index}.weight": {"dtype": "BF16", "shape": [size // 2], "data_offsets": [0, size]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(rng.randbytes(n))
            left -= n
    os.replace(path + ".tmp", path)


def entry(path, name):
    """A manifest entry: sha256 for a large (LFS) file, the git blob sha1 for a small one."""
    with open(path, "rb") as f:
        data = f.read()
    if name.endswith(".safetensors"):
        return {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return {"path": name, "size": len(data), "gitSha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}


def present(out, manifest_path, params):
    """The folder holds what these parameters make: its manifest's params and every file it lists."""
    if not os.path.exists(manifest_path):
        return False
    with open(manifest_path) as f:
        old = json.load(f)
    return old.get("params") == params and all(os.path.exists(os.path.join(out, e["path"])) for e in old["files"])


# What the checkpoint script writes for itself, not part of a model repository.
NOT_MODEL_FILES = {".made-by", "tiny-summary.json"}


def copy_checkpoint(a, manifest_path):
    names = sorted(n for n in os.listdir(a.source) if n not in NOT_MODEL_FILES and os.path.isfile(os.path.join(a.source, n)))
    digest = hashlib.sha256()
    for n in names:
        with open(os.path.join(a.source, n), "rb") as f:
            digest.update(n.encode() + b"\0" + f.read())
    params = {"repo": a.repo, "revision": a.revision, "from": digest.hexdigest()}
    if present(a.out, manifest_path, params):
        print(f"model present: {a.out}")
        return 0
    for n in os.listdir(a.out):
        if n != "manifest.json" and n not in names:
            os.remove(os.path.join(a.out, n))
    files = []
    for n in names:
        shutil.copyfile(os.path.join(a.source, n), os.path.join(a.out, n))
        files.append(entry(os.path.join(a.out, n), n))
    with open(manifest_path + ".tmp", "w") as f:
        json.dump({"repo": a.repo, "revision": a.revision, "params": params, "files": files}, f, indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(f"model written: {a.out} from {a.source} ({len(files)} files, {sum(e['size'] for e in files) / 2**20:.1f} MiB)")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--shard-mib", type=int, default=50)
    ap.add_argument("--from", dest="source", help="copy this checkpoint's files instead")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    manifest_path = os.path.join(a.out, "manifest.json")
    if a.source:
        return copy_checkpoint(a, manifest_path)
    params = {"repo": a.repo, "revision": a.revision, "shards": a.shards, "shardMiB": a.shard_mib}
    if present(a.out, manifest_path, params):
        print(f"model stand-in present: {a.out}")
        return 0
    small = {
        "config.json": (json.dumps(CONFIG, indent=2) + "\n").encode(),
        "generation_config.json": b'{"do_sample": true, "temperature": 0.01}\n',
        "tokenizer_config.json": b'{"model_max_length": 32768}\n',
    }
    files = []
    for name, data in small.items():
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(data)
        files.append({"path": name, "size": len(data), "gitSha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()})
    for i in range(a.shards):
        name = f"model-{i + 1:05d}-of-{a.shards:05d}.safetensors"
        path = os.path.join(a.out, name)
        shard(path, i, a.shard_mib << 20)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(8 << 20), b""):
                h.update(block)
        files.append({"path": name, "size": os.path.getsize(path), "sha256": h.hexdigest()})
    with open(manifest_path, "w") as f:
        json.dump({"repo": a.repo, "revision": a.revision, "params": params, "files": files}, f, indent=1)
    print(f"model stand-in written: {a.out} ({sum(e['size'] for e in files) / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
