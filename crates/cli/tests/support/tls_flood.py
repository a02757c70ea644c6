"""A flood of TLS handshakes that the CSE refuses, for tests and measurements.

Usage: python3 tls_flood.py HOST PORT COUNT CERT KEY SOURCE...
Opens COUNT connections to HOST:PORT one after another, each from the next local SOURCE
address in turn (e.g. 127.0.0.2 127.0.0.3: Linux routes all of 127/8 to loopback), offers
the client certificate CERT/KEY (one the CSE does not trust) and waits for the CSE's verdict.
Prints "refused N accepted M" at the end; exits 0.
"""
import socket
import ssl
import sys


def main():
    host, port, count, cert, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    sources = sys.argv[6:] or ["127.0.0.1"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    refused = accepted = 0
    for i in range(count):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(10)
        try:
            raw.bind((sources[i % len(sources)], 0))
            raw.connect((host, port))
            tls = ctx.wrap_socket(raw, server_hostname="localhost")
            # TLS 1.3 finishes on the client's side before the server checks the client's
            # certificate: the verdict is the server's alert (or close) on the first read.
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            if tls.recv(1):
                accepted += 1
            else:
                refused += 1
        except (ssl.SSLError, OSError):
            refused += 1
        finally:
            raw.close()
    print(f"refused {refused} accepted {accepted}", flush=True)


main()
