#!/usr/bin/env python3
"""Builds the FAKE vLLM as a wheel of the real distribution's name with the local label "+fake"
(vllm-<version>+fake-py3-none-any.whl), so that the lab's package mirror serves it, the lab's lock
pins it (vllm==<version>+fake: never the real release of that number on PyPI) and the unchanged
provisioning installs it with uv.
The module inside is `fake_vllm`; the console script is `vllm`. Stdlib only, deterministic."""
import base64
import hashlib
import os
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main():
    version, outdir = sys.argv[1], sys.argv[2]
    wheel_version = f"{version}+fake"
    os.makedirs(outdir, exist_ok=True)
    dist = f"vllm-{wheel_version}.dist-info"
    files = {}
    for f in sorted(os.listdir(os.path.join(HERE, "fake_vllm"))):
        if f.endswith(".py"):
            data = open(os.path.join(HERE, "fake_vllm", f), "rb").read()
            if f == "__init__.py":
                data = f'"""FAKE vLLM for qwen-vl-deploy tests (no GPU)."""\n__version__ = "{version}"\n'.encode()
            files[f"fake_vllm/{f}"] = data
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: vllm\nVersion: {wheel_version}\nSummary: FAKE vLLM for qwen-vl-deploy tests (no GPU)\n".encode()
    files[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: qwen-vl-deploy\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist}/entry_points.txt"] = b"[console_scripts]\nvllm = fake_vllm.cli:main\n"
    record = [record_line(n, d) for n, d in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(outdir, f"vllm-{wheel_version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 9, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    print(path)


if __name__ == "__main__":
    main()
