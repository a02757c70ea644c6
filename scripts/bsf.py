#!/usr/bin/env python3
"""A stand-in for a 3GPP Bootstrapping Server Function (BSF), for tests and demonstrations of
the GBA-based provisioning framework (TS-0003 clause 8.3.2.3). Python standard library only.

No 3GPP network is reachable here. What is REAL and what is SIMULATED:

  real       B-TID format base64(RAND)@<BSF domain> and a key lifetime per bootstrap
             (TS 33.220 clause 4.5.2); the NAF key derivation Ks_NAF / Ks_ext_NAF / Ks_int_NAF
             = HMAC-SHA-256(Ks, 0x01 || P0 || L0 || RAND || L1 || IMPI || L2 || NAF_Id || L3),
             NAF_Id = NAF FQDN || Ua security protocol id (TS 33.220 Annex B); the NAF (the
             CSE) gets the NAF key for a B-TID and its own NAF_Id only, never Ks; per-subscriber
             settings say which NAFs may have a key (the role of the GUSS).
  simulated  the AKA run: instead of Milenage on a USIM, with K the device's long-term key,
                 AUTN = HMAC-SHA-256(K, "sim-aka AUTN" || RAND)[:16]  (network authentication)
                 RES  = HMAC-SHA-256(K, "sim-aka RES"  || RAND)[:16]  (device authentication)
                 Ks   = HMAC-SHA-256(K, "sim-aka Ks"   || RAND)       (stands for CK || IK)
             Ub is JSON over HTTP instead of HTTP Digest AKA; Zn is JSON over plain HTTP on
             loopback instead of Diameter/SOAP over a protected link; no HSS (the subscribers
             file plays its part); GBA_U keys are computed here like GBA_ME ones (no UICC).

Usage:
  python3 scripts/bsf.py --subscribers subscribers.toml [--listen 127.0.0.1:0]
                         [--domain bsf.secure-cse.example] [--test-controls]

subscribers.toml, mode 600 (it holds the long-term keys):
  [[subscriber]]
  impi = "sensor-gba@ims.secure-cse.example"
  key_hex = "<64 hex digits: the device's long-term key K>"
  nafs = ["id-in.secure-cse.example"]     # the NAFs that may get this subscriber's keys
  lifetime_secs = 3600                    # key lifetime of each bootstrap (default 3600)
  enrolee_id = "Cgba-1"                   # optional: the AE-ID the CSE binds the device to

Prints "listening on http://HOST:PORT" once ready, then one JSON line per event on stderr
(never a key). The protocol:

  Ub  POST /ub/bootstrap {"impi"}                 -> 401 {"rand": hex, "autn": hex}
      POST /ub/bootstrap {"impi", "rand", "res"}  -> 200 {"btid", "expires"} | 403
  Zn  POST /zn/naf-key {"btid", "naf_fqdn", "ua": "0100000002", "key": "ks_naf"|"ks_ext_naf"|"ks_int_naf"}
                                                  -> 200 {"btid", "key_hex", "expires", "impi", "enrolee_id"?}
                                                   | 404 unknown B-TID | 410 expired | 403 NAF not allowed
  test POST /test/expire {"btid"}  (only with --test-controls): ends that B-TID's lifetime now
       POST /test/zn {"available": false|true}  (only with --test-controls): while false, Zn
            requests get no answer at all (the connection is closed), as from a BSF that fails
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import stat
import sys
import threading
import time
import tomllib
import unicodedata

MAX_BODY = 16 * 1024
MAX_PENDING = 1024
MAX_BOOTSTRAPS = 10_000
CHALLENGE_SECS = 60


def sim(k, label, rand):
    return hmac.new(k, label + rand, hashlib.sha256).digest()


def naf_key(ks, kind, rand, impi, naf_fqdn, ua):
    p0 = b"gba-u" if kind == "ks_int_naf" else b"gba-me"
    naf_id = unicodedata.normalize("NFKC", naf_fqdn).encode() + ua
    s = b"\x01"
    for p in (p0, rand, unicodedata.normalize("NFKC", impi).encode(), naf_id):
        s += p + len(p).to_bytes(2, "big")
    return hmac.new(ks, s, hashlib.sha256).digest()


class Bsf:
    def __init__(self, subscribers, domain, test_controls):
        self.subscribers = subscribers  # impi -> dict
        self.domain = domain
        self.test_controls = test_controls
        self.lock = threading.Lock()
        self.pending = {}  # rand -> (impi, deadline)
        self.bootstraps = {}  # btid -> {"impi", "rand", "ks", "expires"}
        self.zn_available = True

    def log(self, **event):
        print(json.dumps(event), file=sys.stderr, flush=True)

    def bootstrap(self, req):
        impi = req.get("impi")
        sub = self.subscribers.get(impi) if isinstance(impi, str) else None
        if sub is None:
            self.log(event="bootstrap-refused", impi=impi, reason="unknown subscriber")
            return 403, {"error": "unknown subscriber"}
        k = sub["key"]
        if "res" not in req:
            rand = secrets.token_bytes(16)
            with self.lock:
                now = time.time()
                self.pending = {r: v for r, v in self.pending.items() if v[1] > now}
                if len(self.pending) >= MAX_PENDING:
                    return 503, {"error": "too many bootstraps in progress"}
                self.pending[rand] = (impi, now + CHALLENGE_SECS)
            self.log(event="challenge", impi=impi)
            return 401, {"rand": rand.hex(), "autn": sim(k, b"sim-aka AUTN", rand)[:16].hex()}
        try:
            rand = bytes.fromhex(req.get("rand", ""))
            res = bytes.fromhex(req.get("res", ""))
        except (TypeError, ValueError):
            return 400, {"error": "rand and res are hex"}
        with self.lock:
            pending = self.pending.pop(rand, None)  # one answer per challenge
        if pending is None or pending[0] != impi or pending[1] < time.time():
            self.log(event="bootstrap-refused", impi=impi, reason="no such challenge")
            return 403, {"error": "no such challenge"}
        if not hmac.compare_digest(res, sim(k, b"sim-aka RES", rand)[:16]):
            self.log(event="bootstrap-refused", impi=impi, reason="wrong RES (wrong device key)")
            return 403, {"error": "authentication failed"}
        btid = base64.b64encode(rand).decode() + "@" + self.domain
        expires = int(time.time()) + sub["lifetime"]
        with self.lock:
            if len(self.bootstraps) >= MAX_BOOTSTRAPS:
                now = time.time()
                self.bootstraps = {b: v for b, v in self.bootstraps.items() if v["expires"] > now}
            if len(self.bootstraps) >= MAX_BOOTSTRAPS:
                return 503, {"error": "too many bootstraps"}
            self.bootstraps[btid] = {"impi": impi, "rand": rand,
                                     "ks": sim(k, b"sim-aka Ks", rand), "expires": expires}
        self.log(event="bootstrapped", impi=impi, btid=btid, expires=expires)
        return 200, {"btid": btid, "expires": expires}

    def zn(self, req):
        btid, naf, kind = req.get("btid"), req.get("naf_fqdn"), req.get("key")
        if not all(isinstance(v, str) for v in (btid, naf, kind, req.get("ua"))) \
                or kind not in ("ks_naf", "ks_ext_naf", "ks_int_naf"):
            return 400, {"error": "btid, naf_fqdn, ua and key are required"}
        try:
            ua = bytes.fromhex(req["ua"])
        except ValueError:
            return 400, {"error": "ua is hex"}
        with self.lock:
            boot = self.bootstraps.get(btid)
        if boot is None:
            self.log(event="zn-refused", btid=btid, naf=naf, reason="unknown B-TID")
            return 404, {"error": "unknown B-TID"}
        if boot["expires"] <= time.time():
            self.log(event="zn-refused", btid=btid, naf=naf, reason="expired")
            return 410, {"error": "B-TID expired"}
        sub = self.subscribers[boot["impi"]]
        if naf.lower() not in sub["nafs"]:
            self.log(event="zn-refused", btid=btid, naf=naf, reason="NAF not allowed")
            return 403, {"error": "this NAF may not have keys of this subscriber"}
        key = naf_key(boot["ks"], kind, boot["rand"], boot["impi"], naf, ua)
        self.log(event="naf-key", btid=btid, naf=naf, key=kind)
        answer = {"btid": btid, "key_hex": key.hex(), "expires": boot["expires"], "impi": boot["impi"]}
        if sub.get("enrolee_id"):
            answer["enrolee_id"] = sub["enrolee_id"]
        return 200, answer

    def set_zn(self, req):
        if not self.test_controls:
            return 404, {"error": "not found"}
        self.zn_available = bool(req.get("available"))
        self.log(event="zn-availability-set-by-test", available=self.zn_available)
        return 200, {}

    def expire(self, req):
        if not self.test_controls:
            return 404, {"error": "not found"}
        with self.lock:
            boot = self.bootstraps.get(req.get("btid"))
            if boot is None:
                return 404, {"error": "unknown B-TID"}
            boot["expires"] = int(time.time()) - 1
        self.log(event="expired-by-test", btid=req.get("btid"))
        return 200, {}


def handler_for(bsf):
    routes = {"/ub/bootstrap": bsf.bootstrap, "/zn/naf-key": bsf.zn, "/test/expire": bsf.expire,
              "/test/zn": bsf.set_zn}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            route = routes.get(self.path)
            if self.path == "/zn/naf-key" and not bsf.zn_available:
                bsf.log(event="zn-dropped-by-test")
                self.close_connection = True
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if route is None:
                status, answer = 404, {"error": "not found"}
            elif not 0 <= length <= MAX_BODY:
                status, answer = 400, {"error": "bad Content-Length"}
            else:
                try:
                    req = json.loads(self.rfile.read(length) or b"{}")
                    status, answer = route(req) if isinstance(req, dict) else (400, {"error": "not an object"})
                except (json.JSONDecodeError, UnicodeDecodeError):
                    status, answer = 400, {"error": "not JSON"}
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def load_subscribers(path):
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        sys.exit(f"bsf: {path} holds long-term keys and must not be readable by others (chmod 600)")
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    subs = {}
    for entry in raw.get("subscriber", []):
        key = bytes.fromhex(entry["key_hex"])
        if len(key) < 16:
            sys.exit(f"bsf: {entry['impi']}: the long-term key must be 16 bytes or more")
        subs[entry["impi"]] = {
            "key": key,
            "nafs": [n.lower() for n in entry.get("nafs", [])],
            "lifetime": int(entry.get("lifetime_secs", 3600)),
            "enrolee_id": entry.get("enrolee_id"),
        }
    return subs


def main():
    parser = argparse.ArgumentParser(description="A BSF stand-in (see the module doc).")
    parser.add_argument("--subscribers", required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--domain", default="bsf.secure-cse.example")
    parser.add_argument("--test-controls", action="store_true")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    bsf = Bsf(load_subscribers(args.subscribers), args.domain, args.test_controls)
    server = http.server.ThreadingHTTPServer((host, int(port)), handler_for(bsf))
    print(f"listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
