#!/usr/bin/env python3
"""Readiness gate: wait (bounded) for vLLM's /health, then send a real chat request with a small
generated image and a question; only a well-formed answer counts as ready (/health can be green
before the model serves, production-stack #619). Stdlib only."""
import argparse
import base64
import json
import os
import struct
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
        time.sleep(2)
    print(f"[qwen-vl readiness] /health is 200 after {a.timeout - (deadline - time.monotonic()):.1f} s")

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
