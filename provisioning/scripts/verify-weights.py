#!/usr/bin/env python3
"""Verify a model directory against its manifest: size and sha256 (LFS files) or git blob sha1
(small files) of every file, hashed in parallel across all cores.

Exit 0: every file matches. Exit 1: a file is missing or differs; the report names it. Exit 2: usage.

--quick trusts files whose size, mtime, ctime and inode still equal the last successful verification's stamp and
hashes only the others: what vLLM's unit runs before every start.

--fetched LIST names files (one path a line) that aria2c has just fetched with the manifest's sha256 as
its checksum: aria2c hashes what it wrote and exits 32 on a mismatch, so they are stamped without a
second pass over the disk (the first fetch is hashed once). Files without a sha256 are hashed here.

Manifest (JSON): {"repo": ..., "revision": ..., "files": [{"path", "size", "sha256" | "gitSha1"}]}.
Stdlib only: it runs on a node before any virtual environment exists.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import sys
import time

CHUNK = 8 * 1024 * 1024


def digest(path, entry):
    if "sha256" in entry:
        h = hashlib.sha256()
    else:
        h = hashlib.sha1()
        h.update(b"blob %d\0" % entry["size"])
    with open(path, "rb", buffering=0) as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def check(root, entry, stamp, quick, fetched=frozenset()):
    path = os.path.join(root, entry["path"])
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {"path": entry["path"], "status": "missing"}
    if st.st_size != entry["size"]:
        return {"path": entry["path"], "status": "size", "expected": entry["size"], "actual": st.st_size}
    # ctime and inode too: an in-place edit with its mtime put back (touch -r) still moves ctime,
    # and a file replaced by another has a new inode; neither can be set from user space.
    key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    if quick and stamp.get(entry["path"]) == key:
        return {"path": entry["path"], "status": "ok", "hashed": False, "stamp": key, "bytes": 0}
    if entry["path"] in fetched and "sha256" in entry:
        return {"path": entry["path"], "status": "ok", "hashed": False, "verifiedBy": "aria2c", "stamp": key, "bytes": 0}
    expected = entry.get("sha256") or entry.get("gitSha1")
    actual = digest(path, entry)
    algo = "sha256" if "sha256" in entry else "git-sha1"
    if actual != expected:
        return {"path": entry["path"], "status": f"{algo} mismatch", "expected": expected, "actual": actual}
    return {"path": entry["path"], "status": "ok", "hashed": True, "stamp": key, "bytes": st.st_size}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--report", help="write the JSON report here")
    ap.add_argument("--stamp", help="sizes and mtimes of the last good verification")
    ap.add_argument("--quick", action="store_true", help="hash only files changed since the stamp")
    ap.add_argument("--fetched", help="a list of files aria2c just fetched and checked against the manifest's sha256")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--list-bad", action="store_true", help="print only the bad paths, one a line")
    a = ap.parse_args()

    try:
        with open(a.manifest) as f:
            manifest = json.load(f)
        files = manifest["files"]
    except (OSError, ValueError, KeyError) as e:
        print(f"[qwen-vl verify] FAILED: cannot read manifest {a.manifest}: {e}", file=sys.stderr)
        return 2
    stamp = {}
    if a.quick and a.stamp and os.path.exists(a.stamp):
        with open(a.stamp) as f:
            stamp = json.load(f)

    fetched = frozenset()
    if a.fetched:
        with open(a.fetched) as f:
            fetched = frozenset(line.strip() for line in f if line.strip())

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        results = list(pool.map(lambda e: check(a.dir, e, stamp, a.quick, fetched), files))
    seconds = time.monotonic() - started
    bad = [r for r in results if r["status"] != "ok"]
    hashed = sum(r.get("bytes", 0) for r in results)
    report = {
        "ok": not bad,
        "repo": manifest.get("repo"),
        "revision": manifest.get("revision"),
        "files": len(files),
        "hashedBytes": hashed,
        "checkedByAria2c": sum(1 for r in results if r.get("verifiedBy") == "aria2c"),
        "seconds": round(seconds, 3),
        "jobs": a.jobs,
        "bad": bad,
    }
    if a.report:
        os.makedirs(os.path.dirname(os.path.abspath(a.report)), exist_ok=True)
        with open(a.report, "w") as f:
            json.dump(report, f, indent=2)
    if not bad and a.stamp:
        with open(a.stamp + ".tmp", "w") as f:
            json.dump({r["path"]: r["stamp"] for r in results}, f)
        os.replace(a.stamp + ".tmp", a.stamp)
    if a.list_bad:
        for r in bad:
            print(r["path"])
        return 1 if bad else 0
    if bad:
        for r in bad:
            detail = f" (expected {r['expected']}, found {r['actual']})" if "expected" in r else ""
            print(f"[qwen-vl verify] BAD {r['path']}: {r['status']}{detail}", file=sys.stderr)
        print(
            f"[qwen-vl verify] FAILED: {len(bad)} of {len(files)} files do not match the manifest of "
            f"{manifest.get('repo')}@{manifest.get('revision')}; vLLM will not start on them. "
            "Re-fetch only those with: weights.sh --refetch-bad",
            file=sys.stderr,
        )
        return 1
    rate = hashed / seconds / 2**20 if seconds > 0 and hashed else 0
    by_aria2c = report["checkedByAria2c"]
    print(
        f"[qwen-vl verify] {len(files)} files match the manifest ({hashed / 2**30:.2f} GiB hashed in "
        f"{seconds:.2f} s, {rate:.0f} MiB/s, {a.jobs} jobs"
        + (f"; {by_aria2c} checked by aria2c as they were fetched" if by_aria2c else "")
        + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
