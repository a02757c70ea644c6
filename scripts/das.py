#!/usr/bin/env python3
"""A stand-in Dynamic Authorization System (DAS, TS-0003 clause 7.3) for tests and demos.

THIS IS NOT A DAS TO DEPLOY. It has no authentication of the CSE that consults it, no TLS,
no persistence, no revocation, HS256 only, and a policy language of three fields. It exists
so that the CSE's dynamic authorization can be exercised end to end with a real peer, using
nothing but the Python 3 standard library.

Two commands:

  python3 scripts/das.py serve POLICY.json
      Listens on 127.0.0.1 (a free port) and prints "listening PORT". Answers the CSE's
      consultations (a NOTIFY whose content is m2m:seci with sit 1 and a dreq) with m2m:seci
      sit 2 and a dres decided by POLICY.json, and prints one JSON line per consultation
      on stdout (what was asked and what was answered). Point a <dynamicAuthorizationConsultation>'s
      dap at http://127.0.0.1:PORT/das.

  python3 scripts/das.py token --issuer NAME --secret-file FILE --holder ID
                               [--audience id-in] [--ops RETRIEVE,DISCOVERY] [--ris RI ...]
                               [--lifetime SECONDS]
      Prints an HS256 token (JWS compact) for the holder, as a DAS hands to an originator in
      indirect dynamic authorization. Its permissions are one rule granting --ops to the
      holder, on the resources --ris (all when none). A negative lifetime makes an expired
      token (for tests).

The policy file (JSON):

  {
    "issuer": {"name": "das-demo", "secret_file": "das.secret"},
    "audience": ["id-in"],
    "rules": [
      {"originator": "Cdemo*", "target": "/id-in/cnt*", "operations": ["RETRIEVE"],
       "lifetime_ms": 60000, "token": false}
    ]
  }

* The first rule that matches decides. A rule matches when "originator" (a glob) matches
  the consultation's or (the absolute originator, e.g. //secure-cse.example/id-in/Cdemo) or
  its last segment (Cdemo), "target" (a glob, default "*") matches trid (/id-in/<ri>), and
  the asked operation is in "operations" (CREATE, RETRIEVE, UPDATE, DELETE, NOTIFY).
* A matching rule with "deny": true, or no matching rule, answers an empty dres: nothing
  granted. Otherwise the answer grants the rule's operations to the originator (dai.gp)
  for "lifetime_ms" (dai.pl; default 60000; 0 or null: no lifetime, the grant serves one
  request). With "token": true the answer also carries an HS256 token for the originator,
  signed with the issuer's secret; with "privileges": false it carries only the token.
* "issuer" is needed only for tokens; secret_file is relative to the policy file and must
  be the same secret as the CSE's [[token_issuer]] of that name. "audience" defaults to
  ["id-in"].
"""
import argparse
import base64
import fnmatch
import hashlib
import hmac
import http.server
import json
import os
import sys
import time
import uuid

# The m2m:operation codes a consultation names (discovery is never consulted).
OPERATIONS = {"CREATE": 1, "RETRIEVE": 2, "UPDATE": 3, "DELETE": 4, "NOTIFY": 5}
NAMES = {code: name for name, code in OPERATIONS.items()}
# The acop bit of each operation; a token may also grant DISCOVERY.
ACOP = {"CREATE": 1, "RETRIEVE": 2, "UPDATE": 4, "DELETE": 8, "NOTIFY": 16, "DISCOVERY": 32}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def read_secret(path):
    with open(path, "rb") as f:
        return f.read().rstrip(b"\r\n")


def hs256_token(issuer, secret, holder, audience, acop, ris, lifetime):
    """An HS256 JWT for `holder` whose one permission grants `acop` on `ris` (all if empty)."""
    now = int(time.time())
    permission = {"pv": {"acr": [{"acor": [holder], "acop": acop}]}}
    if ris:
        permission["ris"] = list(ris)
    claims = {
        "iss": issuer,
        "aud": list(audience),
        "sub": holder,
        "iat": now,
        "nbf": now - 5,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "tkps": {"pm": [permission]},
    }
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def acop_of(names):
    bits = 0
    for name in names:
        bits |= ACOP[name.upper()]
    return bits


class Policy:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        self.rules = doc.get("rules", [])
        for i, rule in enumerate(self.rules):
            for name in rule.get("operations", []):
                if name.upper() not in OPERATIONS:
                    raise SystemExit(f"rule {i + 1}: unknown operation {name!r}")
        self.audience = doc.get("audience", ["id-in"])
        issuer = doc.get("issuer")
        self.issuer = None
        if issuer:
            secret_path = os.path.join(os.path.dirname(os.path.abspath(path)), issuer["secret_file"])
            self.issuer = (issuer["name"], read_secret(secret_path))

    def decide(self, dreq):
        """(rule index or None, the dres to answer)."""
        originator, trid, op = dreq["or"], dreq["trid"], dreq["op"]
        stem = originator.rstrip("/").rsplit("/", 1)[-1]
        for i, rule in enumerate(self.rules):
            pattern = rule.get("originator", "")
            if not (fnmatch.fnmatchcase(originator, pattern) or fnmatch.fnmatchcase(stem, pattern)):
                continue
            if not fnmatch.fnmatchcase(trid, rule.get("target", "*")):
                continue
            if NAMES.get(op) not in [n.upper() for n in rule.get("operations", [])]:
                continue
            if rule.get("deny"):
                return i, {}
            acop = acop_of(rule.get("operations", []))
            dres = {}
            if rule.get("privileges", True):
                dai = {"gp": {"acr": [{"acor": [originator], "acop": acop}]}}
                lifetime = rule.get("lifetime_ms", 60000)
                if lifetime:
                    dai["pl"] = lifetime
                dres["dai"] = dai
            if rule.get("token"):
                if self.issuer is None:
                    raise ValueError("a rule asks for a token but the policy has no issuer")
                name, secret = self.issuer
                lifetime_s = max(1, (rule.get("lifetime_ms") or 60000) // 1000)
                ri = trid.rstrip("/").rsplit("/", 1)[-1]
                dres["tkns"] = [hs256_token(name, secret, originator, self.audience, acop, [ri],
                                            lifetime_s)]
            return i, dres
        return None, {}


class Handler(http.server.BaseHTTPRequestHandler):
    policy = None

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        rqi = self.headers.get("X-M2M-RI", "")
        try:
            seci = json.loads(body)["m2m:seci"]
            if seci.get("sit") != 1:
                raise ValueError("not a dynamic authorization request (sit 1)")
            dreq = seci["dreq"]
            rule, dres = self.policy.decide(dreq)
        except (ValueError, KeyError, TypeError) as e:
            self.log_line({"error": str(e), "from": self.headers.get("X-M2M-Origin")})
            self.answer(400, "4000", rqi, None)
            return
        self.log_line({
            "from": self.headers.get("X-M2M-Origin"),
            "or": dreq.get("or"),
            "trid": dreq.get("trid"),
            "trt": dreq.get("trt"),
            "op": NAMES.get(dreq.get("op"), dreq.get("op")),
            "rule": None if rule is None else rule + 1,
            "granted": "dai" in dres or "tkns" in dres,
            "pl": dres.get("dai", {}).get("pl"),
            "tokens": len(dres.get("tkns", [])),
        })
        self.answer(200, "2000", rqi, {"m2m:seci": {"sit": 2, "dres": dres}})

    def answer(self, status, rsc, rqi, content):
        data = b"" if content is None else json.dumps(content).encode()
        self.send_response(status)
        self.send_header("X-M2M-RSC", rsc)
        self.send_header("X-M2M-RI", rqi)
        self.send_header("X-M2M-RVI", "3")
        if content is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def log_line(entry):
        print(json.dumps(entry), flush=True)

    def log_message(self, *args):
        pass


def serve(args):
    Handler.policy = Policy(args.policy)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def token(args):
    ops = [o for o in args.ops.split(",") if o]
    for o in ops:
        if o.upper() not in ACOP:
            raise SystemExit(f"unknown operation {o!r}")
    print(hs256_token(args.issuer, read_secret(args.secret_file), args.holder, args.audience,
                      acop_of(ops), args.ris, args.lifetime))


def main():
    parser = argparse.ArgumentParser(description="A stand-in DAS for tests and demos (not for deployment).")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="answer the CSE's consultations from a policy file")
    s.add_argument("policy")
    s.set_defaults(run=serve)
    t = sub.add_parser("token", help="print an HS256 token for an originator")
    t.add_argument("--issuer", required=True)
    t.add_argument("--secret-file", required=True)
    t.add_argument("--holder", required=True)
    t.add_argument("--audience", nargs="+", default=["id-in"])
    t.add_argument("--ops", default="RETRIEVE", help="comma-separated operations granted")
    t.add_argument("--ris", nargs="*", default=[], help="resource IDs the token is limited to")
    t.add_argument("--lifetime", type=int, default=300, help="seconds; negative: already expired")
    t.set_defaults(run=token)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
