#!/usr/bin/env python3
"""Time for a valid client to be served beside idle connections (issue 10 finding 3).

Starts the real `cse` with the test PKI of scripts/make-test-pki.sh (a plaintext listener and
a TLS listener), then, on each listener, measures a client that opens a fresh connection
(a full TLS handshake with the AE certificate ae1 on the TLS listener), sends one RETRIEVE of
the CSEBase and reads the answer:

  baseline   no other connection
  own-300    beside 300 idle connections from the client's own address (127.0.0.1)
  spread-2000 beside 2,000 idle connections from 2,000 addresses of 127.0.0.0/8

and prints p50 and p99 of the time from connect to the whole answer. The idle connections
send nothing; the CSE's handshake timeout is set to 60 s so that they are all still open while
the client is measured. Figures, not a pass/fail: the rows are comparable within one run.

Usage: scripts/idle-bench.py [--cse PATH] [--samples N]
(IDLE_BENCH_KEEP=DIR keeps the PKI, the data folder and cse.log in DIR.)
"""

import argparse
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUEST = (
    b"GET /cse-in HTTP/1.1\r\nHost: localhost\r\nX-M2M-Origin: Cae1\r\n"
    b"X-M2M-RI: bench\r\nX-M2M-RVI: 3\r\nAccept: application/json\r\n\r\n"
)


def default_cse():
    for profile in ("release", "debug"):
        path = os.path.join(ROOT, "target", profile, "cse")
        if os.path.isfile(path):
            return path
    return None


def read_answer(sock):
    """Reads one response (head and Content-Length body); returns its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the answer: %r" % data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed inside the body")
        body += chunk
    if b"x-m2m-rsc" not in head.lower():
        raise RuntimeError("an answer without X-M2M-RSC: %r" % head)
    return head.split(b"\r\n")[0]


def one_request(port, tls_context):
    started = time.perf_counter()
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = tls_context.wrap_socket(raw, server_hostname="localhost") if tls_context else raw
    try:
        sock.sendall(REQUEST)
        read_answer(sock)
    finally:
        sock.close()
    return time.perf_counter() - started


def open_idle(port, count, spread):
    idle = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if spread:
            s.bind(("127.%d.%d.%d" % (1 + i // 62500, (i // 250) % 250, 1 + i % 250), 0))
        s.settimeout(20)
        s.connect(("127.0.0.1", port))
        idle.append(s)
    return idle


def percentile(sorted_values, p):
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values))) - 1))
    return sorted_values[index]


def measure(port, tls_context, samples):
    times = sorted(one_request(port, tls_context) for _ in range(samples))
    return percentile(times, 50) * 1000, percentile(times, 99) * 1000


def start_cse(cse, folder):
    pki = os.path.join(folder, "tls")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "make-test-pki.sh"), pki],
                   check=True, capture_output=True)
    with open(os.path.join(pki, "cse.toml")) as f:
        config = f.read().replace("127.0.0.1:8443", "127.0.0.1:0")
    config += "handshake_timeout_ms = 60000\n"
    path = os.path.join(pki, "bench.toml")
    with open(path, "w") as f:
        f.write(config)
    log = open(os.path.join(folder, "cse.log"), "w")
    proc = subprocess.Popen(
        [cse, "--config", path, "--http", "127.0.0.1:0", "--data", os.path.join(folder, "data")],
        stdout=subprocess.PIPE, stderr=log, text=True)
    urls = [proc.stdout.readline().strip() for _ in range(2)]
    if not all(u.startswith("listening on ") for u in urls):
        proc.kill()
        raise RuntimeError("cse did not start: %r (log: %s)" % (urls, log.name))
    ports = [int(u.rsplit(":", 1)[1]) for u in urls]
    context = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
    context.load_cert_chain(os.path.join(pki, "ae1.pem"), os.path.join(pki, "ae1.key"))
    return proc, ports[0], ports[1], context


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cse", default=default_cse(), help="the cse binary")
    parser.add_argument("--samples", type=int, default=200, help="requests per row")
    args = parser.parse_args()
    if not args.cse or not os.path.isfile(args.cse):
        sys.exit("no cse binary: build it (cargo build --release -p cli) or pass --cse PATH")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as scratch:
        # IDLE_BENCH_KEEP=DIR keeps the PKI, data and cse.log in DIR for a look afterwards.
        folder = os.environ.get("IDLE_BENCH_KEEP") or scratch
        proc, plain, tls, context = start_cse(args.cse, folder)
        try:
            print("cse: %s, %d requests per row (new connection each)" % (args.cse, args.samples))
            print()
            print("| listener | beside | p50 ms | p99 ms |")
            print("|---|---|---|---|")
            for name, port, ctx in (("plaintext", plain, None), ("TLS (certificate)", tls, context)):
                for label, count, spread in (("nothing (baseline)", 0, False),
                                             ("300 idle, client's own address", 300, False),
                                             ("2,000 idle, 2,000 addresses", 2000, True)):
                    idle = open_idle(port, count, spread)
                    p50, p99 = measure(port, ctx, args.samples)
                    for s in idle:
                        s.close()
                    print("| %s | %s | %.1f | %.1f |" % (name, label, p50, p99), flush=True)
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
