#!/usr/bin/env python3
"""What one child-result RETRIEVE costs the CSE over a container of large instances.

The scenario of issue 9 M4: a container holds N content instances of SIZE bytes each, and
P clients at once ask for `GET <container>?rcn=4&lim=1&ty=4` (one instance each). Prints the
time of each request, the CSE's resident memory before and its peak during the burst, and
the latency of an unrelated small RETRIEVE made while the burst runs.

    cargo build -p cli --bin cse
    scripts/child-results-bench.py --cse target/debug/cse [--instances 200] [--size 921600]
        [--parallel 8] [--query 'rcn=4&lim=1&ty=4']

The data folder is a temporary folder under $TMPDIR (else /tmp), deleted at the end.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request


def request(base, method, path, origin, body=None, ty=None, rqi="r"):
    headers = {"X-M2M-Origin": origin, "X-M2M-RI": rqi, "X-M2M-RVI": "3",
               "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = f"application/json;ty={ty}"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=600) as resp:
        return resp.status, dict(resp.headers), resp.read()


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cse", default="target/debug/cse")
    ap.add_argument("--instances", type=int, default=200)
    ap.add_argument("--size", type=int, default=900 * 1024)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--query", default="rcn=4&lim=1&ty=4", help="the query of each parallel RETRIEVE")
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="child-results-")
    log = open(os.path.join(data, "cse.log"), "w")
    cse = subprocess.Popen([args.cse, "--http", "127.0.0.1:0", "--data", data],
                           stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = cse.stdout.readline().strip()
        base = line.removeprefix("listening on ")
        request(base, "POST", "/cse-in", "C", {"m2m:ae": {"rn": "s", "api": "Nbench", "rr": False, "srv": ["3"]}}, 2)
        _, _, body = request(base, "GET", "/cse-in/s", "CAdmin")
        ae = json.loads(body)["m2m:ae"]["aei"]
        request(base, "POST", "/cse-in/s", ae,
                {"m2m:cnt": {"rn": "c", "mni": args.instances * 2, "mbs": args.instances * args.size * 2}}, 3)
        con = "x" * args.size
        for i in range(args.instances):
            request(base, "POST", "/cse-in/s/c", ae, {"m2m:cin": {"con": con}}, 4, rqi=f"c{i}")
        rss_before = status_kib(cse.pid, "VmRSS")
        with open(f"/proc/{cse.pid}/clear_refs", "w") as f:
            f.write("5")  # resets the peak (VmHWM) to the current RSS
        times = [None] * args.parallel
        sizes = [None] * args.parallel

        def one(i):
            t0 = time.monotonic()
            _, _, b = request(base, "GET", f"/cse-in/s/c?{args.query}", ae, rqi=f"g{i}")
            times[i] = time.monotonic() - t0
            sizes[i] = len(b)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.parallel)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        probe_t0 = time.monotonic()
        request(base, "GET", "/cse-in/s", ae, rqi="probe")
        probe = time.monotonic() - probe_t0
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        peak = status_kib(cse.pid, "VmHWM")
        times.sort()
        print(f"instances {args.instances} x {args.size} B, {args.parallel} parallel "
              f"GET c?{args.query} (response {sizes[0]} B each)")
        print(f"per request: min {times[0]:.3f} s, median {times[len(times)//2]:.3f} s, "
              f"max {times[-1]:.3f} s; burst wall {wall:.3f} s")
        print(f"small RETRIEVE during the burst: {probe*1000:.1f} ms")
        print(f"RSS before {rss_before/1024:.0f} MiB, peak during burst {peak/1024:.0f} MiB")
    finally:
        cse.terminate()
        cse.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
