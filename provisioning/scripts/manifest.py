#!/usr/bin/env python3
"""What weights.sh asks of a weights manifest ({"repo", "revision", "files": [{"path", "size",
"sha256" | "gitSha1"}]}). Stdlib only.

  manifest.py check MANIFEST REVISION     exit 0 when it is for REVISION and lists files; prints their count
  manifest.py complete MANIFEST PATH FILE exit 0 when FILE is at least PATH's size (complete, maybe wrong)
  manifest.py aria2-input MANIFEST URLS PATH...
      aria2c's input file on stdout: each URL (URLS: "<url>[\\t<auth>]" a line, in PATH order), its
      file, the manifest's sha256 as aria2c's checksum, and the HF_TOKEN header where auth is 1
"""
import json
import os
import sys


def files(manifest):
    with open(manifest) as f:
        return {e["path"]: e for e in json.load(f)["files"]}


def main(argv):
    if len(argv) >= 3 and argv[0] == "check":
        with open(argv[1]) as f:
            m = json.load(f)
        if m.get("revision") != argv[2] or not m.get("files"):
            return 1
        print(len(m["files"]))
        return 0
    if len(argv) == 4 and argv[0] == "complete":
        return 0 if os.path.getsize(argv[3]) >= files(argv[1])[argv[2]]["size"] else 1
    if len(argv) >= 4 and argv[0] == "aria2-input":
        m = files(argv[1])
        with open(argv[2]) as f:
            lines = [line.split("\t") for line in f.read().splitlines() if line.strip()]
        token = os.environ.get("HF_TOKEN")
        for (url, *auth), path in zip(lines, argv[3:]):
            print(url)
            print(f"  out={path}")
            if "sha256" in m[path]:
                print(f"  checksum=sha-256={m[path]['sha256']}")
            if auth and auth[0] == "1" and token:
                print(f"  header=Authorization: Bearer {token}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
