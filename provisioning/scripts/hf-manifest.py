#!/usr/bin/env python3
"""Write the manifest of a Hugging Face repository at a pinned revision: size and sha256 (the LFS
oid) of every large file, size and git blob sha1 of every small one, from the hub's API
(HfApi.list_repo_tree). Honors HF_ENDPOINT and HF_TOKEN. Runs in the node's virtual environment."""
import json
import os
import sys

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError


def main():
    if len(sys.argv) != 3:
        print("usage: hf-manifest.py <repo> <revision>", file=sys.stderr)
        return 2
    repo, revision = sys.argv[1:]
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT"), token=os.environ.get("HF_TOKEN") or None)
    files = []
    try:
        for item in api.list_repo_tree(repo, revision=revision, recursive=True):
            if not hasattr(item, "blob_id"):
                continue  # a folder
            lfs = getattr(item, "lfs", None)
            if lfs:
                sha = lfs.sha256 if hasattr(lfs, "sha256") else lfs["sha256"]
                files.append({"path": item.path, "size": item.size, "sha256": sha})
            else:
                files.append({"path": item.path, "size": item.size, "gitSha1": item.blob_id})
    except HfHubHTTPError as e:
        # One line a person can act on: the hub's own reason (not found, gated, bad revision).
        status = e.response.status_code if e.response is not None else "?"
        reason = (e.server_message or str(e)).strip().splitlines()[-1]
        print(f"the hub answered {status}: {reason}", file=sys.stderr)
        return 1
    json.dump({"repo": repo, "revision": revision, "files": sorted(files, key=lambda f: f["path"])}, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
