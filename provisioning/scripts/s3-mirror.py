#!/usr/bin/env python3
"""The S3 weights mirror, through botocore (the AWS SDK, pinned in the node's tools environment):
  s3-mirror.py get s3://bucket/prefix PATH DEST          fetch one small object (the manifest)
  s3-mirror.py presign [--expires S] s3://bucket/prefix PATH...
                                                         presigned HTTPS GET URLs, one per line,
                                                         for aria2c to fetch in parallel and resume
Signature version 4 (S3 refuses version 2 on buckets created since 2020). Credentials and region
come from botocore's usual chain: the instance role on EC2, AWS_DEFAULT_REGION rendered from the
stack; AWS_ENDPOINT_URL is honored. Failures are one line naming the object and the reason."""
import argparse
import os
import sys

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def split(base):
    bucket, _, prefix = base[len("s3://"):].partition("/")
    return bucket, prefix.strip("/")


def key_of(prefix, path):
    return f"{prefix}/{path}" if prefix else path


def client():
    session = botocore.session.get_session()
    region = session.get_config_variable("region")
    if not region:
        raise SystemExit("no AWS region: set AWS_DEFAULT_REGION to the bucket's region")
    if session.get_credentials() is None:
        raise SystemExit("no AWS credentials (on EC2 the node's instance role provides them)")
    return session.create_client("s3", region_name=region, config=Config(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("get")
    g.add_argument("base")
    g.add_argument("path")
    g.add_argument("dest")
    p = sub.add_parser("presign")
    p.add_argument("--expires", type=int, default=21600)
    p.add_argument("base")
    p.add_argument("paths", nargs="+")
    a = ap.parse_args()
    if not a.base.startswith("s3://"):
        raise SystemExit(f"not an S3 URL: {a.base}")
    bucket, prefix = split(a.base)
    s3 = client()
    try:
        if a.command == "get":
            key = key_of(prefix, a.path)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            tmp = a.dest + ".part"
            with open(tmp, "wb") as f:
                f.write(body)
            os.replace(tmp, a.dest)
        else:
            for path in a.paths:
                print(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key_of(prefix, path)}, ExpiresIn=a.expires))
    except ClientError as e:
        err = e.response.get("Error", {})
        raise SystemExit(f"s3://{bucket}/{key_of(prefix, getattr(a, 'path', ''))}: {err.get('Code', '?')} {err.get('Message', '')}".rstrip())
    except BotoCoreError as e:
        raise SystemExit(f"s3://{bucket}/{prefix}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
