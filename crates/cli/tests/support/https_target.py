"""A notification target over HTTPS, for tests and demonstrations.

Usage: python3 https_target.py CERT KEY [CLIENT_CA]
Listens on 127.0.0.1 (a free port), prints "listening PORT", then one JSON line per request
it receives: the path, the X-M2M-Origin header, the peer certificate's subject CN (when
CLIENT_CA is given, a client certificate from that CA is required) and the body. Answers
every request with 200 and X-M2M-RSC 2000, as an AE's notification endpoint does.
"""
import http.server
import json
import ssl
import sys


class Target(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        peer = self.connection.getpeercert() or {}
        cn = next((v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"), None)
        print(json.dumps({
            "path": self.path,
            "origin": self.headers.get("X-M2M-Origin"),
            "peer_cn": cn,
            "body": json.loads(body or b"null"),
        }), flush=True)
        self.send_response(200)
        self.send_header("X-M2M-RSC", "2000")
        self.send_header("X-M2M-RI", self.headers.get("X-M2M-RI", ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    cert, key = sys.argv[1], sys.argv[2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if len(sys.argv) > 3:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(sys.argv[3])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
