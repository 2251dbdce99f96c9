#!/usr/bin/env python3
"""The lab's mirror: a static HTTP server for the weights mirror (files + manifest.json) and the
Python package mirror (a flat directory of wheels, listed as links for pip/uv --find-links).
Supports Range requests (so aria2c resumes), an optional rate limit (to interrupt a download
mid-way in tests) and a JSON-lines request log. Stdlib only; binds only where it is told.

Under /hub it is also a small stand-in for the Hugging Face Hub, over the same model directories
(models/<org>--<name>/<commit>/ with their manifest.json), for the real `hf` CLI and HfApi with
HF_ENDPOINT=http://<host>:<port>/hub — only the calls provisioning makes:
  GET  /hub/api/models/<repo>/revision/<commit>        repo_info (sha, siblings)
  GET  /hub/api/models/<repo>/tree/<commit>[/<path>]   list_repo_tree (LFS oid = sha256, sizes)
  HEAD|GET /hub/<repo>/resolve/<commit>/<path>         small files: metadata (X-Repo-Commit, ETag)
                                                       and bytes; LFS files: 302 to the CDN
The CDN is the same server on a second port (another host to a client), serving models/ without a
token, as huggingface.co redirects large files to its signed CDN URLs. Every request is logged
with whether it carried an Authorization header.
Unknown repositories and revisions answer 404 with the hub's X-Error-Code; with --hub-token every
hub call needs "Authorization: Bearer <token>" (401 otherwise), as a gated model does."""
import argparse
import select
import socket
import hashlib
import html
import json
import os
import sys
import threading
import time
import re
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."
    rate = 0
    # An interruption by design: the first request for a file whose name ends with stall_path
    # sends stall_after bytes, logs "stalled", then sends nothing more until the client goes away.
    stall_path = None
    stall_after = 0
    stalled = set()
    log_file = None
    hub_token = None
    cdn_port = 0
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
        if urllib.parse.urlsplit(self.path).path.startswith("/hub/"):
            self.handle_hub(head)
            return
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
        self.send_file(full, rel, head)

    def send_file(self, full, rel, head, extra=None):
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
        for k, v in (extra or {}).items():
            self.send_header(k, v)
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
                        if self.stall_path and rel.endswith(self.stall_path) and rel not in self.stalled:
                            room = self.stall_after - sent
                            if room <= len(chunk):
                                self.wfile.write(chunk[:room])
                                self.wfile.flush()
                                sent += room
                                with self.lock:
                                    self.stalled.add(rel)
                                self.record(event="stalled", method=self.command, path=rel, start=start, bytes=sent)
                                while True:  # until the client hangs up
                                    ready, _, _ = select.select([self.connection], [], [], 0.5)
                                    if ready and not self.connection.recv(1, socket.MSG_PEEK):
                                        return
                        self.wfile.write(chunk)
                        sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        self.record(method=self.command, path=rel, status=status, range=rng, start=start, bytes=sent,
                    port=self.server.server_address[1], auth="Authorization" in self.headers)

    # ---- the stand-in hub -------------------------------------------------------------------

    HUB_ROUTES = (
        ("info", re.compile(r"^/hub/api/models/([^/]+/[^/]+)/revision/([^/]+)$")),
        ("tree", re.compile(r"^/hub/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$")),
        ("resolve", re.compile(r"^/hub/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")),
    )

    def send_json(self, status, obj, head=False, extra=None):
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def hub_error(self, status, code, message, rel, head):
        self.send_json(status, {"error": message}, head, {"X-Error-Code": code, "X-Error-Message": message})
        self.record(method=self.command, path=rel, status=status, hub=code)

    def hub_manifest(self, repo, revision):
        """(manifest, directory) of a model at a commit, or an error (status, code, message)."""
        repo_dir = os.path.join(self.root, "models", repo.replace("/", "--"))
        if not os.path.isdir(repo_dir):
            return None, None, (404, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
        rev_dir = os.path.join(repo_dir, revision)
        if not re.fullmatch(r"[0-9a-f]{40}", revision) or not os.path.isfile(os.path.join(rev_dir, "manifest.json")):
            return None, None, (404, "RevisionNotFound", f"Invalid rev id: {revision}")
        with open(os.path.join(rev_dir, "manifest.json")) as f:
            return json.load(f), rev_dir, None

    @staticmethod
    def lfs_pointer(entry):
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{entry['sha256']}\nsize {entry['size']}\n".encode()

    @classmethod
    def tree_entry(cls, entry):
        """A file as the hub's tree API lists it: oid is the git blob id (of the LFS pointer for LFS files)."""
        if "sha256" in entry:
            pointer = cls.lfs_pointer(entry)
            oid = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
            return {"type": "file", "oid": oid, "size": entry["size"], "path": entry["path"],
                    "lfs": {"oid": entry["sha256"], "size": entry["size"], "pointerSize": len(pointer)}}
        return {"type": "file", "oid": entry["gitSha1"], "size": entry["size"], "path": entry["path"]}

    def handle_hub(self, head):
        url_path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        rel = url_path.lstrip("/")
        if self.hub_token and self.headers.get("Authorization") != f"Bearer {self.hub_token}":
            self.hub_error(401, "GatedRepo", "Access to this model is restricted: a valid token is required.", rel, head)
            return
        for kind, pattern in self.HUB_ROUTES:
            m = pattern.match(url_path)
            if m:
                break
        else:
            self.hub_error(404, "EntryNotFound", f"no such hub route: {url_path}", rel, head)
            return
        repo, revision = m.group(1), m.group(2)
        manifest, rev_dir, err = self.hub_manifest(repo, revision)
        if err:
            self.hub_error(*err, rel, head)
            return
        files = manifest["files"]
        if kind == "info":
            self.send_json(200, {"id": repo, "modelId": repo, "sha": revision, "private": False, "gated": bool(self.hub_token),
                                 "siblings": [{"rfilename": e["path"]} for e in files]}, head)
            self.record(method=self.command, path=rel, status=200, hub=kind)
        elif kind == "tree":
            prefix = (m.group(3) or "").strip("/")
            listed = [e for e in files if not prefix or e["path"].startswith(prefix + "/")]
            self.send_json(200, [self.tree_entry(e) for e in listed], head)
            self.record(method=self.command, path=rel, status=200, hub=kind)
        else:
            entry = next((e for e in files if e["path"] == m.group(3)), None)
            if entry is None:
                self.hub_error(404, "EntryNotFound", f"{m.group(3)} does not exist at revision {revision}", rel, head)
                return
            etag = entry.get("sha256") or entry["gitSha1"]
            if "sha256" in entry and self.cdn_port:
                # Large (LFS) files: the hub answers with a redirect to its CDN, another host, as
                # huggingface.co does (X-Linked-Size/X-Linked-Etag carry the file's size and oid).
                host = (self.headers.get("Host") or "127.0.0.1").rsplit(":", 1)[0]
                target = f"http://{host}:{self.cdn_port}/models/{repo.replace('/', '--')}/{revision}/{urllib.parse.quote(entry['path'])}"
                self.send_response(302)
                for k, v in {"Location": target, "X-Repo-Commit": revision, "X-Linked-Size": str(entry["size"]),
                             "X-Linked-Etag": f'"{etag}"', "Content-Length": "0"}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.record(method=self.command, path=rel, status=302, hub=kind, auth="Authorization" in self.headers)
                return
            self.send_file(os.path.join(rev_dir, entry["path"]), rel, head, {"X-Repo-Commit": revision, "ETag": f'"{etag}"'})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rate", type=int, default=0, help="bytes per second per connection (0: unlimited)")
    ap.add_argument("--stall-path", help="interrupt the first download of the file whose path ends with this")
    ap.add_argument("--stall-after", type=int, default=0, help="bytes sent before the stall")
    ap.add_argument("--log")
    ap.add_argument("--hub-token", help="the stand-in hub answers only requests with this bearer token")
    a = ap.parse_args()
    Handler.root = os.path.realpath(a.root)
    Handler.rate = a.rate
    Handler.stall_path = a.stall_path
    Handler.stall_after = a.stall_after
    Handler.log_file = a.log
    Handler.hub_token = a.hub_token
    httpd = ThreadingHTTPServer((a.host, a.port), Handler)
    httpd.daemon_threads = True
    # The hub's CDN: the same files on a port of its own (another host, to a client), where the hub
    # redirects large files and no token is asked for (the hub signs its CDN URLs).
    cdn = ThreadingHTTPServer((a.host, 0), Handler)
    cdn.daemon_threads = True
    Handler.cdn_port = cdn.server_address[1]
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    print(f"LISTENING {httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
