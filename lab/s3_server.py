#!/usr/bin/env python3
"""The lab's S3: moto's S3 server (a maintained emulator of the S3 API) on the bridge, holding one
bucket with a model directory uploaded under a prefix, for the node's real S3 path (botocore
presigned URLs, aria2c). Prints "LISTENING <port>" once the objects are in place; logs every request
(method, path with its query, status) on stderr; stops on SIGTERM. Runs in .lab/s3-venv."""
import argparse
import os
import signal
import sys
import threading

import boto3
from moto.server import ThreadedMotoServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--dir", required=True, help="files to upload under the prefix")
    a = ap.parse_args()
    server = ThreadedMotoServer(ip_address=a.host, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1", aws_access_key_id="lab", aws_secret_access_key="lab")
    s3.create_bucket(Bucket=a.bucket)
    for name in sorted(os.listdir(a.dir)):
        path = os.path.join(a.dir, name)
        if os.path.isfile(path):
            s3.upload_file(path, a.bucket, f"{a.prefix.strip('/')}/{name}")
    print(f"LISTENING {port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
