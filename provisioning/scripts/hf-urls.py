#!/usr/bin/env python3
"""Where each file of a Hugging Face repository at a pinned revision downloads from, for aria2c:
one line per path, "<url>\t<auth>", auth 1 when the URL needs the token (the hub itself) and 0 when
the hub redirected to its CDN (a signed URL: the token is not sent there, as the hub's own client
does not send it across hosts). Follows the hub's relative redirects (renamed repositories,
/api/resolve-cache) with the token, stops at the first redirect to another host.

  hf-urls.py <repo> <revision> <path>...      (HF_ENDPOINT, HF_TOKEN from the environment: node.env, secrets.env)

Stdlib only. Exit 1 with the hub's reason (X-Error-Message) when a file cannot be resolved."""
import os
import sys
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def resolve(url, token):
    opener = urllib.request.build_opener(NoRedirect)
    for _ in range(5):
        req = urllib.request.Request(url, method="HEAD")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with opener.open(req, timeout=30):
                return url, 1  # served by the hub itself: the token goes with it
        except urllib.error.HTTPError as e:
            if e.code in (301, 302, 303, 307, 308) and e.headers.get("Location"):
                target = urllib.parse.urljoin(url, e.headers["Location"])
                if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(url).netloc:
                    return target, 0
                url = target
                continue
            reason = e.headers.get("X-Error-Message") or e.reason
            raise RuntimeError(f"the hub answered {e.code} for {url}: {reason}") from None
    raise RuntimeError(f"too many redirects for {url}")


def main():
    if len(sys.argv) < 4:
        print("usage: hf-urls.py <repo> <revision> <path>...", file=sys.stderr)
        return 2
    repo, revision, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    endpoint = os.environ.get("HF_ENDPOINT")
    if not endpoint:
        print("hf-urls.py: HF_ENDPOINT is not set (node.env states it; weights.sh loads it)", file=sys.stderr)
        return 2
    endpoint = endpoint.rstrip("/")
    token = os.environ.get("HF_TOKEN") or None
    try:
        for path in paths:
            url = f"{endpoint}/{repo}/resolve/{revision}/{urllib.parse.quote(path)}"
            target, auth = resolve(url, token)
            print(f"{target}\t{auth}")
    except (RuntimeError, urllib.error.URLError, OSError) as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
