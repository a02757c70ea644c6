#!/usr/bin/env bash
# Installs what the key-store tests (crates/keystore) need: SoftHSMv2 for the level-3 (PKCS#11)
# home, swtpm + the TSS2 libraries for the level-2 (TPM 2.0) home, which is the cargo feature
# `tpm` (off by default; building it needs libtss2-dev and pkg-config). Idempotent: packages already
# present are not reinstalled and `apt-get update` runs only when something is missing.
# The tests start their own swtpm and initialise their own SoftHSM token in a temporary
# directory, so nothing is started here. Called from .ci/run; safe to run by hand (as root).
set -euo pipefail

# softhsm2:      the PKCS#11 module /usr/lib/softhsm/libsofthsm2.so and softhsm2-util
# swtpm, swtpm-tools: the software TPM 2.0 (swtpm socket) and swtpm_setup
# libtss2-dev:   headers and libtss2-esys/-tctildr for tss-esapi (pulls libtss2-tcti-swtpm0)
# tpm2-tools:    tpm2_* commands: a test fills the TPM's object slots with tpm2_createprimary;
#                also for debugging (tpm2_getcap handles-transient, tpm2_flushcontext)
# pkg-config:    tss-esapi-sys finds libtss2 through it
pkgs=(softhsm2 swtpm swtpm-tools libtss2-dev tpm2-tools pkg-config)

need=()
for pkg in "${pkgs[@]}"; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    echo "keystore-services: $pkg already installed ($(dpkg-query -W -f='${Version}' "$pkg"))"
  else
    need+=("$pkg")
  fi
done

if [ ${#need[@]} -gt 0 ]; then
  echo "keystore-services: installing ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  for pkg in "${need[@]}"; do
    echo "keystore-services: installed $pkg $(dpkg-query -W -f='${Version}' "$pkg")"
  done
else
  echo "keystore-services: nothing to install"
fi

# What the tests will find.
module=/usr/lib/softhsm/libsofthsm2.so
if [ -e "$module" ]; then echo "keystore-services: PKCS#11 module $module"; else echo "keystore-services: WARNING $module missing"; fi
for tool in softhsm2-util swtpm swtpm_setup; do
  if command -v "$tool" >/dev/null; then echo "keystore-services: $tool at $(command -v "$tool")"; else echo "keystore-services: WARNING $tool not on PATH"; fi
done
if pkg-config --exists tss2-esys; then
  echo "keystore-services: tss2-esys $(pkg-config --modversion tss2-esys)"
else
  echo "keystore-services: WARNING pkg-config cannot find tss2-esys"
fi
