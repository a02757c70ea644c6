#!/usr/bin/env bash
# Makes everything needed to try secure-cse's TLS listener, with the openssl command line:
#   ca.pem / ca.key          a CA (ECDSA P-256) whose name constraints cover the SP's domain
#   cse.pem / cse.key        the CSE's certificate: its public domain name and localhost (as a
#                            server, and as a client towards https notification targets)
#   target.pem / target.key  an https notification target on localhost
#   ae1.pem / ae1.key        an AE-ID certificate (URI SAN //<sp>/<cse>/Cae1)
#   admin.pem / admin.key    an admin credential: the admin originator's AE-ID certificate,
#                            listed as the admin's in credentials.toml
#   revoked.pem / .key       an AE certificate that ca.crl revokes
#   ca.crl                   the CRL (the CSE publishes it at /.well-known/crl/ca.crl)
#   credentials.toml         two pre-shared keys: sensor-1 (any CSE-assigned AE-ID) and admin;
#                            admin.pem's Credential-ID marked admin
#   sensor-1.psk             the hex key of sensor-1, for clients
#   cse.toml                 a configuration with a TLS listener on 127.0.0.1:8443
# For tests and demonstrations only: a real deployment keeps the CA key elsewhere.
# Usage: scripts/make-test-pki.sh [DIR]   (default: ./tls). SP_ID and CSE_ID may be set.
set -euo pipefail
out=${1:-tls}
sp=${SP_ID:-secure-cse.example}
cse=${CSE_ID:-id-in}
mkdir -p "$out"
cd "$out"
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# A certificate's Credential-ID digest: the SHA-256 of its TBSCertificate (the part the CA
# signed), what `m2m credentials id` prints. The certificate is SEQUENCE { tbs, ... } with a
# long-form length; tbs starts at byte 4 and is 30 81 LL or 30 82 HH LL.
tbs_digest() {
  local der byte len
  der=$(mktemp)
  openssl x509 -in "$1" -outform DER -out "$der"
  byte() { od -An -tu1 -j"$1" -N1 "$der" | tr -d ' '; }
  [ "$(byte 0)" = 48 ] && [ "$(byte 1)" = 130 ] && [ "$(byte 4)" = 48 ] || { echo "tbs_digest: unexpected DER in $1" >&2; exit 1; }
  case "$(byte 5)" in
    129) len=$(( $(byte 6) + 3 )) ;;
    130) len=$(( $(byte 6) * 256 + $(byte 7) + 4 )) ;;
    *) echo "tbs_digest: unexpected TBS length form in $1" >&2; exit 1 ;;
  esac
  tail -c +5 "$der" | head -c "$len" | openssl dgst -sha256 -r | cut -d' ' -f1
  rm -f "$der"
}

cat > openssl.cnf <<CNF
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 365
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
nameConstraints = critical, permitted;DNS:${sp}, permitted;DNS:localhost
CNF
: > index.txt
echo 01 > crlnumber

newkey ca.key
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=secure-cse test CA" \
  -config openssl.cnf -extensions v3_ca -out ca.pem

# The CSE publishes the CRLs of its TLS listeners on its plaintext listener.
crl_url=${CRL_URL:-http://localhost:8080/.well-known/crl/ca.crl}

# issue NAME CN EKU SAN...
issue() {
  local name=$1 cn=$2 eku=$3
  shift 3
  local sans
  sans=$(IFS=,; echo "$*")
  newkey "$name.key"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr" -config openssl.cnf
  printf 'basicConstraints = CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = %s\nsubjectAltName = %s\nauthorityKeyIdentifier = keyid\ncrlDistributionPoints = URI:%s\n' \
    "$eku" "$sans" "$crl_url" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -sha256 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

issue cse "$cse" "serverAuth, clientAuth" "DNS:${cse}.${sp}" "DNS:localhost"
issue target target serverAuth "DNS:localhost"
issue ae1 Cae1 clientAuth "URI://${sp}/${cse}/Cae1"
issue admin CAdmin clientAuth "URI://${sp}/${cse}/CAdmin"
issue revoked Crevoked clientAuth "URI://${sp}/${cse}/Crevoked"
openssl ca -config openssl.cnf -keyfile ca.key -cert ca.pem -revoke revoked.pem 2>/dev/null
openssl ca -config openssl.cnf -keyfile ca.key -cert ca.pem -gencrl -out ca.crl 2>/dev/null

openssl rand -hex 16 > sensor-1.psk
openssl rand -hex 32 > admin.psk
cat > credentials.toml <<TOML
# Pre-shared keys (Kpsa) by KpsaID; keep this file mode 600.
[[psk]]
identity = "sensor-1@${sp}"
key_hex = "$(cat sensor-1.psk)"
allowed_aes = ["C*"]        # one CSE-assigned AE-ID, remembered at its first registration

[[psk]]
identity = "admin@${sp}"
key_hex = "$(cat admin.psk)"
ae = "CAdmin"
admin = true

# The admin certificate, by its Credential-ID: naming CAdmin alone makes no admin.
[[certificate]]
credential_id = "33-$(tbs_digest admin.pem)"
ae = "CAdmin"
admin = true
TOML

here=$(pwd)
cat > cse.toml <<TOML
[cse]
sp_id = "${sp}"
cse_id = "${cse}"

[security]
credentials = "${here}/credentials.toml"

[[tls]]
name = "https"
listen = "127.0.0.1:8443"
frameworks = ["certificate", "psk"]
certificate = "${here}/cse.pem"
private_key = "${here}/cse.key"
trust_anchors = ["${here}/ca.pem"]
crls = ["${here}/ca.crl"]
TOML
chmod 644 ./*.pem ca.crl cse.toml
echo "made a test PKI, pre-shared keys and cse.toml in $here"
