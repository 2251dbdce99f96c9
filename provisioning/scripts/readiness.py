#!/usr/bin/env python3
"""Readiness gate: wait (bounded) for vLLM's /health, then send a real chat request with a small
generated image and a question; only a well-formed answer counts as ready (/health can be green
before the model serves, production-stack #619). Stdlib only."""
import argparse
import base64
import json
import os
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib


def png(width, height, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# The image is solid red, so a model that sees it names the colour. A well-formed completion is not
# enough: Qwen2-family models in float16 overflow on GPUs without bf16 (T4, V100) and answer runs of
# "!" (Qwen2-VL issues; vLLM's docs on dtype), which /health and the OpenAI schema both accept.
EXPECTED_COLOUR = "red"
# The gate's request: this image (width, height, RGB) and this question, asked at temperature 0.
IMAGE = (64, 48, (220, 30, 30))
QUESTION = "What is the main colour of this image? Answer in one word."
MAX_TOKENS = 16


def judge(answer):
    """Why this answer shows a broken engine, or None when it is a real answer about the image."""
    tokens = answer.split()
    compact = "".join(tokens)
    if len(set(compact)) <= 1 or (len(tokens) >= 4 and len(set(tokens)) == 1):
        return (
            f"the model answered {answer[:60]!r}: one token repeated, not words. The engine computes garbage; "
            "on a GPU without bf16 (T4, V100) Qwen2 models overflow in float16: use vllm.dtype float32 or a bf16 GPU"
        )
    if EXPECTED_COLOUR not in answer.lower():
        return (
            f"asked the main colour of a solid {EXPECTED_COLOUR} image, the model answered {answer[:60]!r}: "
            "it does not see images correctly (check the model's vision weights, its processor config and max pixels)"
        )
    return None


INFO_LINE = re.compile(r"^vllm:cache_config_info\{(.*)\}\s+\S+\s*$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def allocated_kv_tokens(metrics_text):
    """The KV cache vLLM allocated, in tokens, from /metrics: vllm:cache_config_info, the gauge of
    its CacheConfig (vllm/v1/metrics/loggers.py), carries kv_cache_size_tokens (from 0.2x: the
    "KV cache size: N tokens" of its startup log, group-aware) or num_gpu_blocks × block_size
    (older releases, and on the CPU build too). The smallest over engines; None when not exported."""
    found = []
    for line in metrics_text.splitlines():
        m = INFO_LINE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(1)))
        tokens = labels.get("kv_cache_size_tokens", "None")
        if tokens.isdigit():
            found.append(int(tokens))
        elif labels.get("num_gpu_blocks", "None").isdigit() and labels.get("block_size", "None").isdigit():
            found.append(int(labels["num_gpu_blocks"]) * int(labels["block_size"]))
    return min(found) if found else None


def judge_kv(allocated, planned, max_model_len, device):
    """(lines to print, failure or None): the allocated KV cache against the plan and one request."""
    if allocated is None:
        return ["KV cache: this engine exports no vllm:cache_config_info on /metrics; not compared"], None
    gap = (allocated - planned) / planned * 100 if planned else 0.0
    line = f"KV cache: planned {planned:,} tokens, vLLM allocated {allocated:,} ({gap:+.1f} %, {device})"
    if allocated < max_model_len:
        return [line], (
            f"vLLM's KV cache holds {allocated:,} tokens, less than one request of max_model_len {max_model_len:,} "
            f"(the plan: {planned:,}): lower vllm.maxModelLen, or give the KV cache more memory "
            "(vllm.gpuMemoryUtilization, more or larger GPUs, a quantized model)"
        )
    return [line], None


def write_kv_gauges(textfile_dir, planned, allocated, labels):
    """qwen_vl_kv_cache_tokens for Prometheus's node exporter (its textfile collector), atomically."""
    lines = [
        "# HELP qwen_vl_kv_cache_tokens KV cache tokens: planned by qwen-vl-deploy, allocated by vLLM at its last start.",
        "# TYPE qwen_vl_kv_cache_tokens gauge",
        f'qwen_vl_kv_cache_tokens{{{labels},source="plan"}} {planned}',
    ]
    if allocated is not None:
        lines.append(f'qwen_vl_kv_cache_tokens{{{labels},source="vllm"}} {allocated}')
    os.makedirs(textfile_dir, exist_ok=True)
    path = os.path.join(textfile_dir, "qwen_vl_kv_cache.prom")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


# A vLLM that fails at startup is restarted by systemd (Restart=on-failure) and fails again: after
# this many restarts within the gate the cause is in the journal, and waiting out the timeout (up to
# half an hour on a large model) would only hide it.
CRASH_LOOP_RESTARTS = 3
# An exception's message line, bare or behind vLLM's log prefix "(Worker pid=N) ERROR … [file.py:N] ".
EXCEPTION_LINE = re.compile(r"^(?:\(\S+ pid=\d+\) ERROR .*?\] )?((?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception)\b.*)$")


def unit_restarts(unit):
    """systemd's restart count of the unit (NRestarts), or None without systemd or the unit."""
    try:
        out = subprocess.run(["systemctl", "show", "-p", "NRestarts", "--value", unit], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return int(value) if out.returncode == 0 and value.isdigit() else None


def error_cause(journal):
    """The root cause of the last failed start in the unit's journal (`journalctl -o cat`): the
    first exception raised between the last "Started" and the exit after it, since vLLM's engine
    and API server re-raise a worker's error wrapped ("See root cause above"); with vLLM's own
    note when its compiled ops did not load (a missing system library, e.g. libnuma)."""
    lines = journal.splitlines()
    exits = [i for i, l in enumerate(lines) if "Main process exited" in l]
    end = exits[-1] if exits else len(lines)
    starts = [i for i, l in enumerate(lines[:end]) if l.startswith("Started ")]
    run = lines[starts[-1] + 1 if starts else 0 : end]
    causes = []
    for line in run:
        m = EXCEPTION_LINE.match(line.strip())
        if m and not re.search(r"root cause|stack trace", m.group(1), re.I):
            causes.append(m.group(1))
    ops = next((l.split("] ", 1)[-1] for l in run if "Failed to import from vllm._C" in l), None)
    found = causes[0] if causes else None
    if ops and found:
        return f"{found} (after: {ops})"
    return found or ops


def last_error(unit):
    """error_cause() of the unit's journal, or None."""
    try:
        out = subprocess.run(["journalctl", "-u", unit, "-o", "cat", "-n", "3000", "--no-pager"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return error_cause(out.stdout)


def request(url, body=None, key=None, timeout=60):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def main():
    ap = argparse.ArgumentParser()
    # Defaults: node.env's settings (readiness.sh and verify.sh load it), never a second default here.
    ap.add_argument("--url", help="default: http://127.0.0.1:$API_PORT")
    ap.add_argument("--model", help="default: $SERVED_MODEL_NAME")
    ap.add_argument("--timeout", type=float, help="seconds; default: $READINESS_TIMEOUT")
    ap.add_argument("--kv-gauges", metavar="DIR", help="write the KV cache gauges into this textfile folder")
    ap.add_argument("--kv-only", action="store_true", help="only compare the KV cache with the plan (verify)")
    a = ap.parse_args()

    def setting(name):
        value = os.environ.get(name)
        if not value:
            ap.error(f"{name} is not set: run through readiness.sh, which loads node.env")
        return value

    a.url = a.url or f"http://127.0.0.1:{setting('API_PORT')}"
    a.model = a.model or setting("SERVED_MODEL_NAME")
    a.timeout = a.timeout if a.timeout is not None else float(setting("READINESS_TIMEOUT"))
    key = os.environ.get("VLLM_API_KEY")
    deadline = time.monotonic() + a.timeout
    last = "no answer"
    # readiness.sh names the unit (VLLM_UNIT): a crash loop is then named instead of waited out.
    unit = os.environ.get("VLLM_UNIT")
    restarts_at_start = unit_restarts(unit) if unit else None
    while True:
        try:
            status, _ = request(f"{a.url}/health", timeout=5)
            if status == 200:
                break
            last = f"HTTP {status}"
        except (urllib.error.URLError, OSError) as e:
            last = str(getattr(e, "reason", e))
        if time.monotonic() > deadline:
            print(f"[qwen-vl readiness] FAILED: {a.url}/health not healthy after {a.timeout:.0f} s ({last}): see journalctl -u qwen-vl-vllm", file=sys.stderr)
            return 1
        restarts = unit_restarts(unit) if restarts_at_start is not None else None
        if restarts is not None and restarts - restarts_at_start >= CRASH_LOOP_RESTARTS:
            cause = last_error(unit) or "no error line in the journal"
            print(
                f"[qwen-vl readiness] FAILED: vLLM exits at startup: systemd restarted {unit} {restarts - restarts_at_start} times "
                f"while the gate waited; its last error: {cause[:400]} (journalctl -u {unit})",
                file=sys.stderr,
            )
            return 1
        time.sleep(2)
    print(f"[qwen-vl readiness] /health is 200 after {a.timeout - (deadline - time.monotonic()):.1f} s")

    # What vLLM allocated against the plan (node.env: PLANNED_KV_TOKENS, PLANNED_KV_DEVICE, MAX_MODEL_LEN).
    if os.environ.get("PLANNED_KV_TOKENS"):
        planned = int(setting("PLANNED_KV_TOKENS"))
        try:
            _, metrics = request(f"{a.url}/metrics", timeout=30)
            allocated = allocated_kv_tokens(metrics.decode(errors="replace"))
        except (urllib.error.URLError, OSError) as e:
            print(f"[qwen-vl readiness] FAILED: {a.url}/metrics did not answer: {e}", file=sys.stderr)
            return 1
        lines, failure = judge_kv(allocated, planned, int(setting("MAX_MODEL_LEN")), setting("PLANNED_KV_DEVICE"))
        for line in lines:
            print(f"[qwen-vl readiness] {line}")
        if a.kv_gauges:
            labels = f'model="{setting("MODEL_ID")}",revision="{setting("REVISION")}"'
            write_kv_gauges(a.kv_gauges, planned, allocated, labels)
        if failure:
            print(f"[qwen-vl readiness] FAILED: {failure}", file=sys.stderr)
            return 1
    if a.kv_only:
        return 0

    image = "data:image/png;base64," + base64.b64encode(png(*IMAGE)).decode()
    body = {
        "model": a.model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": image}},
                    {"type": "text", "text": QUESTION},
                ],
            }
        ],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }
    started = time.monotonic()
    try:
        status, raw = request(f"{a.url}/v1/chat/completions", body, key, timeout=max(5.0, deadline - time.monotonic()))
    except urllib.error.HTTPError as e:
        print(f"[qwen-vl readiness] FAILED: the image request got HTTP {e.code}: {e.read()[:300].decode(errors='replace')}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print(f"[qwen-vl readiness] FAILED: the image request did not complete: {e}", file=sys.stderr)
        return 1
    try:
        reply = json.loads(raw)
        content = reply["choices"][0]["message"]["content"]
        assert isinstance(content, str) and content, "empty answer"
        assert reply["usage"]["prompt_tokens"] > 0 and reply["usage"]["completion_tokens"] > 0, "no token usage"
        assert reply.get("model") == a.model, f"answered as model {reply.get('model')!r}, expected {a.model!r}"
    except (ValueError, KeyError, IndexError, TypeError, AssertionError) as e:
        print(f"[qwen-vl readiness] FAILED: the answer is not a chat completion ({e}): {raw[:300]!r}", file=sys.stderr)
        return 1
    # Whitespace alone (a random or broken model's newlines) is judged as the garbage it is.
    answer = content.strip() or content
    problem = judge(answer)
    if problem:
        print(f"[qwen-vl readiness] FAILED: {problem}", file=sys.stderr)
        return 1
    print(f"[qwen-vl readiness] ready: image+text answered in {time.monotonic() - started:.2f} s: {answer[:60]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
