"""Listing speed of a checkpoint store on an S3 API: obstore vs fsspec+s3fs vs boto3.

Uploads N objects shaped like a checkpoint store (step directories with DCP shards) into moto's
S3 server on 127.0.0.1, then times a full recursive listing with each client (best of R runs) and
one full exporter scan (list + small reads + detect).  s3fs is optional: install it in a
throw-away venv (it pins its own botocore) to include it.

    python bench/bench_checkpoint_listing.py [--objects 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import logging
import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from moto.server import ThreadedMotoServer

BUCKET = "bench-ckpt"


def best(fn, runs: int) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t)
    return min(times), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_REGION="us-east-1",
                      AWS_ENDPOINT_URL=endpoint, AWS_ALLOW_HTTP="true")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    keys = []
    per_step = 64
    for step in range(args.objects // (per_step + 1)):
        d = f"run/step_{step * 100}"
        keys += [f"{d}/__{r}_0.distcp" for r in range(per_step)] + [f"{d}/.metadata"]
    t = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=BUCKET, Key=k, Body=b"x"), keys))
    print(f"uploaded {len(keys)} objects in {time.perf_counter() - t:.1f}s")

    from ai_signals_exporter.checkpoints import detect
    from ai_signals_exporter.checkpoints.stores import ObjectTree, scan

    tree = ObjectTree(f"s3://{BUCKET}/run", {}, timeout=60)

    def obstore_list() -> int:
        return len(asyncio.run(tree.list(10**7, 1000)))

    def boto3_list() -> int:
        n = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="run/"):
            n += len(page.get("Contents", []))
        return n

    results = {"obstore": best(obstore_list, args.runs), "boto3": best(boto3_list, args.runs)}
    try:
        import s3fs

        def s3fs_list() -> int:
            fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
            return len(fs.find(f"{BUCKET}/run", detail=True))

        results["fsspec+s3fs"] = best(s3fs_list, args.runs)
    except ImportError:
        print("s3fs not installed: skipped")
    for name, (secs, n) in results.items():
        print(f"{name:12s} {n:7d} objects  {secs * 1000:8.1f} ms  ({n / secs:9.0f} objects/s)")
    base = results["obstore"][0]
    for name, (secs, _) in results.items():
        print(f"  {name}: {secs / base:.2f}x obstore's time")

    def full_scan() -> int:
        listing = asyncio.run(scan(tree, 10**7, 1000))
        v = detect(listing, time.time(), None, "auto", scheme="s3")
        assert v.layout == "dcp" and v.last_step is not None
        return len(listing)

    secs, n = best(full_scan, args.runs)
    print(f"full exporter scan (list + reads + detect): {secs * 1000:.1f} ms for {n} objects")
    server.stop()


if __name__ == "__main__":
    main()
