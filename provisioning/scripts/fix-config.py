#!/usr/bin/env python3
"""Qwen2-VL's config.json for vLLM < 0.6.3: transformers 4.45 rewrote the "mrope" rope_scaling to
"default" and older vLLM then looked for a "factor" key ("KeyError: 'factor'", vllm #8281, #8388).
Keeps "mrope" under both keys vLLM and transformers read. The patched file's hash is recorded in the
verification stamp's manifest overlay so that integrity checks still hold. Idempotent."""
import hashlib
import json
import os
import sys


def main():
    model_dir, manifest_path = sys.argv[1], sys.argv[2]
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    rs = cfg.get("rope_scaling") or {}
    if rs.get("type") == "mrope" and rs.get("rope_type") == "mrope":
        print("[qwen-vl config] rope_scaling already carries mrope under type and rope_type: unchanged")
        return 0
    if "mrope_section" not in rs:
        print("[qwen-vl config] no mrope rope_scaling in config.json: nothing to fix")
        return 0
    rs["type"] = "mrope"
    rs["rope_type"] = "mrope"
    cfg["rope_scaling"] = rs
    data = (json.dumps(cfg, indent=2) + "\n").encode()
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    with open(manifest_path) as f:
        manifest = json.load(f)
    for entry in manifest["files"]:
        if entry["path"] == "config.json":
            entry.pop("sha256", None)
            entry["gitSha1"] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            entry["size"] = len(data)
            entry["patched"] = "rope_scaling mrope (vllm #8281)"
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
    print("[qwen-vl config] changed: rope_scaling now carries mrope under type and rope_type")
    return 0


if __name__ == "__main__":
    sys.exit(main())
