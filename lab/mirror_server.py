#!/usr/bin/env python3
"""The lab's mirror: a static HTTP server for the weights mirror (files + manifest.json) and the
Python package mirror (a flat directory of wheels, listed as links for pip/uv --find-links).
Supports Range requests (so aria2c resumes), an optional rate limit (to interrupt a download
mid-way in tests) and a JSON-lines request log. Stdlib only; binds only where it is told."""
import argparse
import html
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    rate = 0
    log_file = None
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass

    def record(self, **entry):
        if not self.log_file:
            return
        with self.lock, open(self.log_file, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def resolve(self):
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        full = os.path.realpath(os.path.join(self.root, rel))
        if not (full == self.root or full.startswith(self.root + os.sep)):
            return None, rel
        return full, rel

    def do_HEAD(self):
        self.handle_get(head=True)

    def do_GET(self):
        self.handle_get(head=False)

    def handle_get(self, head):
        full, rel = self.resolve()
        if full is None or not os.path.exists(full):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.record(method=self.command, path=rel, status=404)
            return
        if os.path.isdir(full):
            names = sorted(os.listdir(full))
            body = "<html><body>\n" + "".join(
                f'<a href="{html.escape(urllib.parse.quote(n + ("/" if os.path.isdir(os.path.join(full, n)) else "")))}">{html.escape(n)}</a><br>\n' for n in names
            ) + "</body></html>\n"
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)
            self.record(method=self.command, path=rel, status=200, bytes=len(data))
            return
        size = os.path.getsize(full)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].split(",")[0].partition("-")
            start = int(a) if a else max(0, size - int(b))
            end = int(b) if a and b else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.record(method=self.command, path=rel, status=416, range=rng)
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        self.send_header("Last-Modified", self.date_time_string(int(os.path.getmtime(full))))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        sent = 0
        if not head:
            try:
                with open(full, "rb") as f:
                    f.seek(start)
                    while sent < length:
                        chunk = f.read(min(256 * 1024, length - sent))
                        if not chunk:
                            break
                        if self.rate:
                            time.sleep(len(chunk) / self.rate)
                        self.wfile.write(chunk)
                        sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        self.record(method=self.command, path=rel, status=status, range=rng, start=start, bytes=sent)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rate", type=int, default=0, help="bytes per second per connection (0: unlimited)")
    ap.add_argument("--log")
    a = ap.parse_args()
    Handler.root = os.path.realpath(a.root)
    Handler.rate = a.rate
    Handler.log_file = a.log
    httpd = ThreadingHTTPServer((a.host, a.port), Handler)
    httpd.daemon_threads = True
    print(f"LISTENING {httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
