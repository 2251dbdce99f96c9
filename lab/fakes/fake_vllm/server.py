"""FAKE vLLM OpenAI-compatible server (stdlib only): /health, /version, /v1/models,
/v1/chat/completions (text, image_url parts as data: or http(s): URLs, streaming), the image limit
per prompt, API-key protection of /v1 only, and /metrics with vLLM's metric names."""
import base64
import json
import math
import os
import signal
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .png import mean_colour, png_size

COLOURS = {
    "red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 60, 220), "white": (245, 245, 245),
    "black": (10, 10, 10), "yellow": (230, 220, 40), "grey": (128, 128, 128),
}


def colour_name(rgb):
    return min(COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], rgb)))


class State:
    def __init__(self, args, version):
        self.args = args
        self.version = version
        self.model = (args.served_model_name or [args.model])[0]
        self.limit = (args.limit_mm_per_prompt or {}).get("image", 1)
        kw = args.mm_processor_kwargs or {}
        self.max_pixels = int(kw.get("max_pixels", 12845056))
        self.max_len = args.max_model_len or 32768
        self.api_key = os.environ.get("VLLM_API_KEY")
        self.token_delay = float(os.environ.get("FAKE_VLLM_TOKEN_DELAY", "0.005"))
        self.lock = threading.Lock()
        self.running = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success = 0
        self.ttft = []
        self.e2e = []


def image_bytes(url):
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        if ";base64" not in header:
            raise ValueError("data URL must be base64")
        return base64.b64decode(data)
    if url.startswith(("http://", "https://")):
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read(20 * 1024 * 1024)
    raise ValueError(f"unsupported image URL scheme: {url[:30]}")


def describe(raw, max_pixels):
    size = png_size(raw)
    if size:
        w, h = size
        scale = min(1.0, math.sqrt(max_pixels / (w * h)))
        tokens = max(4, math.ceil(w * scale / 28) * math.ceil(h * scale / 28))
        try:
            return f"{colour_name(mean_colour(raw))}", tokens
        except ValueError:
            return "an image", tokens
    if raw[:3] == b"\xff\xd8\xff":
        return "a JPEG image", 256
    raise ValueError("cannot identify image file")


HISTOGRAM_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0]


def histogram(name, labels, values):
    out = [f"# TYPE {name} histogram"]
    for b in HISTOGRAM_BUCKETS:
        out.append(f'{name}_bucket{{{labels},le="{b}"}} {sum(1 for v in values if v <= b)}')
    out.append(f'{name}_bucket{{{labels},le="+Inf"}} {len(values)}')
    out.append(f"{name}_sum{{{labels}}} {sum(values)}")
    out.append(f"{name}_count{{{labels}}} {len(values)}")
    return out


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-vllm"
    protocol_version = "HTTP/1.1"
    state: State = None  # set by serve()

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_VLLM_ACCESS_LOG"):
            sys.stderr.write("FAKE vllm: " + fmt % args + "\n")

    def send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message, kind="BadRequestError"):
        self.send(status, {"object": "error", "message": message, "type": kind, "param": None, "code": status})

    def authorized(self):
        key = self.state.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self.send(401, {"error": "Unauthorized"})
            return False
        return True

    def do_GET(self):
        s = self.state
        if self.path == "/health":
            return self.send(200, b"", "text/plain")
        if self.path == "/version":
            return self.send(200, {"version": s.version})
        if self.path == "/metrics":
            return self.send(200, self.metrics().encode(), "text/plain; version=0.0.4")
        if self.path == "/v1/models":
            if not self.authorized():
                return
            return self.send(200, {"object": "list", "data": [{"id": s.model, "object": "model", "owned_by": "vllm", "root": s.args.model, "max_model_len": s.max_len}]})
        self.error(404, f"not found: {self.path}", "NotFoundError")

    def do_POST(self):
        s = self.state
        if self.path != "/v1/chat/completions":
            return self.error(404, f"not found: {self.path}", "NotFoundError")
        if not self.authorized():
            return
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        except ValueError:
            return self.error(400, "request body is not JSON")
        if req.get("model") not in (s.model, None):
            return self.error(404, f"The model `{req.get('model')}` does not exist.", "NotFoundError")
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(400, "messages must be a non-empty list")
        images, words, answers = 0, 0, []
        prompt_tokens = 0
        question = ""
        for m in messages:
            content = m.get("content") if isinstance(m, dict) else None
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(parts, list):
                return self.error(400, "each message needs content: a string or a list of parts")
            for part in parts:
                if part.get("type") == "text":
                    text = part.get("text", "")
                    words += len(text.split())
                    if m.get("role") == "user":
                        question = text
                elif part.get("type") == "image_url":
                    images += 1
                    if images > s.limit:
                        return self.error(400, f"At most {s.limit} image(s) may be provided in one prompt.")
                    try:
                        answer, tokens = describe(image_bytes(part["image_url"]["url"]), s.max_pixels)
                    except Exception as e:
                        return self.error(400, f"Failed to load image: {e}")
                    answers.append(answer)
                    prompt_tokens += tokens
                else:
                    return self.error(400, f"unsupported content part type {part.get('type')!r}")
        prompt_tokens += max(1, math.ceil(words * 1.3)) + 8
        max_tokens = int(req.get("max_tokens") or 64)
        if prompt_tokens + 1 > s.max_len:
            return self.error(400, f"This model's maximum context length is {s.max_len} tokens. However, you requested {prompt_tokens + max_tokens} tokens.")
        reply = (" ".join(answers) + " " if answers else "") + f"(fake answer to: {question[:80]})"
        # A broken engine, on purpose: fp16 overflow on T4 makes Qwen2 models emit runs of "!".
        if os.environ.get("FAKE_VLLM_ANSWER"):
            reply = os.environ["FAKE_VLLM_ANSWER"]
        tokens = reply.split()[:max_tokens] or ["ok"]
        with s.lock:
            s.running += 1
        started = time.monotonic()
        try:
            if req.get("stream"):
                self.stream(req, tokens, prompt_tokens, started)
            else:
                time.sleep(s.token_delay * len(tokens))
                ttft = time.monotonic() - started
                self.send(200, {
                    "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": s.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(tokens)}, "finish_reason": "stop" if len(tokens) < max_tokens else "length"}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens), "total_tokens": prompt_tokens + len(tokens)},
                })
                self.record(prompt_tokens, len(tokens), ttft, time.monotonic() - started)
        finally:
            with s.lock:
                s.running -= 1

    def stream(self, req, tokens, prompt_tokens, started):
        s = self.state
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        ttft = None
        for i, tok in enumerate(tokens):
            time.sleep(s.token_delay)
            piece = tok if i == 0 else " " + tok
            chunk = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": s.model,
                     "choices": [{"index": 0, "delta": ({"role": "assistant", "content": piece} if i == 0 else {"content": piece}), "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            if ttft is None:
                ttft = time.monotonic() - started
        final = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": s.model,
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        if (req.get("stream_options") or {}).get("include_usage"):
            final["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens), "total_tokens": prompt_tokens + len(tokens)}
        self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()
        self.close_connection = True
        self.record(prompt_tokens, len(tokens), ttft or 0.0, time.monotonic() - started)

    def record(self, prompt, generated, ttft, e2e):
        s = self.state
        with s.lock:
            s.prompt_tokens += prompt
            s.generation_tokens += generated
            s.success += 1
            s.ttft.append(ttft)
            s.e2e.append(e2e)

    def metrics(self):
        s = self.state
        lbl = f'model_name="{s.model}"'
        with s.lock:
            lines = [
                "# TYPE vllm:num_requests_running gauge", f"vllm:num_requests_running{{{lbl}}} {s.running}",
                "# TYPE vllm:num_requests_waiting gauge", f"vllm:num_requests_waiting{{{lbl}}} 0",
                "# TYPE vllm:kv_cache_usage_perc gauge", f"vllm:kv_cache_usage_perc{{{lbl}}} {min(1.0, s.running * 0.01)}",
                "# TYPE vllm:prompt_tokens_total counter", f"vllm:prompt_tokens_total{{{lbl}}} {s.prompt_tokens}",
                "# TYPE vllm:generation_tokens_total counter", f"vllm:generation_tokens_total{{{lbl}}} {s.generation_tokens}",
                "# TYPE vllm:request_success_total counter", f'vllm:request_success_total{{finished_reason="stop",{lbl}}} {s.success}',
            ]
            lines += histogram("vllm:time_to_first_token_seconds", lbl, s.ttft)
            lines += histogram("vllm:e2e_request_latency_seconds", lbl, s.e2e)
        return "\n".join(lines) + "\n"


def serve(args, version):
    Handler.state = State(args, version)
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown, daemon=True).start())
    port = httpd.server_address[1]
    print(f"FAKE vllm {version}: serving {Handler.state.model} on http://{args.host}:{port} (image limit {Handler.state.limit})", flush=True)
    print(f"LISTENING {port}", flush=True)
    httpd.serve_forever()
