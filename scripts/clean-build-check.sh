#!/usr/bin/env bash
# Runs the README's two set-up commands where a newcomer would: a fresh Debian bookworm with
# only a C toolchain (build-essential), curl and CA certificates (what installing Rust with
# rustup needs) and the Rust toolchain, nothing else: no libssl-dev, no pkg-config, no TSS2.
#
#   sudo bash scripts/clean-build-check.sh            # quick: the CSE runs; keystore + quick tour tests
#   sudo FULL=1 bash scripts/clean-build-check.sh     # ... and the whole `cargo test --workspace`
#
# Needs root (debootstrap, chroot, bind mounts) and the Debian mirror. The chroot is made once
# (debootstrap, about 150 MB) and reused; the worktree is copied in afresh on every run (tracked
# and untracked files, not target/), and built with its own target directory inside the chroot.
# The host's Rust toolchain is bind-mounted read-only and the host's cargo registry cache is
# copied in, so crates are not downloaded again. Not part of CI; docs/building.md records a run.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${CLEAN_ROOT:-/var/tmp/cse-clean/root}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
RUSTUP=${RUSTUP_HOME:-$HOME/.rustup}
TOOLCHAIN=${TOOLCHAIN:-stable-x86_64-unknown-linux-gnu}
REGISTRY=${CARGO_HOME:-$HOME/.cargo}/registry
FULL=${FULL:-0}

say() { printf '\n== %s\n' "$*"; }

if [ ! -x "$ROOT/usr/bin/gcc" ]; then
  say "debootstrap $SUITE into $ROOT"
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
  mkdir -p "$ROOT"
  debootstrap --variant=minbase --include=build-essential,ca-certificates,curl \
    "$SUITE" "$ROOT" "$MIRROR"
fi

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() { # bind SRC DEST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
mkdir -p "$ROOT/proc"
mount -t proc proc "$ROOT/proc"
mounts+=("$ROOT/proc")
bind /dev "$ROOT/dev"
bind /dev/pts "$ROOT/dev/pts"
bind "$RUSTUP/toolchains/$TOOLCHAIN" "$ROOT/opt/rust" ro
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

say "copy the cargo registry cache and the worktree"
mkdir -p "$ROOT/opt/cargo"
rm -rf "$ROOT/opt/cargo/registry"
cp -a "$REGISTRY" "$ROOT/opt/cargo/registry"
rm -rf "$ROOT/src/secure-cse"
mkdir -p "$ROOT/src/secure-cse"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard | grep -zv '^target/' |
  tar --null -T - -cf -) | tar -C "$ROOT/src/secure-cse" -xf -

say "what the chroot has"
chroot "$ROOT" /bin/bash -c '
  . /etc/os-release; echo "$PRETTY_NAME, $(dpkg -l | grep -c ^ii) packages"
  for p in libssl-dev pkg-config libtss2-dev openssl python3 softhsm2 swtpm; do
    dpkg -s $p >/dev/null 2>&1 && echo "  $p: installed" || echo "  $p: absent"
  done'

# The commands run as a newcomer would run them: PATH with the toolchain, nothing else set.
in_chroot() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb CARGO_TERM_COLOR=never \
    PATH=/opt/rust/bin:/usr/local/bin:/usr/bin:/bin CARGO_HOME=/opt/cargo \
    /bin/bash -c "set -o pipefail; cd /src/secure-cse && $1"
}

say "README: cargo run --release --bin cse"
in_chroot 'rustc --version && cargo --version'
start=$(date +%s)
in_chroot 'nice cargo build --release --bin cse' 2>&1 | tail -n 3
echo "release build: $(($(date +%s) - start)) s"
in_chroot '(cargo run --release --bin cse >/tmp/cse.out 2>/tmp/cse.err & echo $! >/tmp/cse.pid)'
answered=""
for _ in $(seq 1 100); do
  if answered=$(in_chroot "curl -s -i http://127.0.0.1:8080/cse-in -H 'X-M2M-Origin: CAdmin' \
      -H 'X-M2M-RI: clean-1' -H 'X-M2M-RVI: 3'" 2>/dev/null) && [ -n "$answered" ]; then
    break
  fi
  in_chroot 'kill -0 $(cat /tmp/cse.pid)' 2>/dev/null || break
  sleep 0.2
done
in_chroot 'kill $(cat /tmp/cse.pid); cat /tmp/cse.err | tail -n 5'
printf '%s\n' "$answered" | grep -E '^(HTTP|X-M2M-RSC)' || true
printf '%s\n' "$answered" | grep -q 'X-M2M-RSC: 2000' || { echo "FAILED: the CSE did not answer 2000"; exit 1; }

say "README: cargo test (parts: keystore, the quick tour)"
in_chroot 'nice cargo test -p keystore 2>&1 | grep -E "^test result|SKIPPED|FAILED|panicked|error" '
in_chroot 'nice cargo test -p cli --test integration quick_tour:: 2>&1 | grep -E "^test result|SKIPPED|FAILED|panicked|error" '
if [ "$FULL" = 1 ]; then
  say "README: cargo test --workspace"
  in_chroot 'nice cargo test --workspace 2>&1 | grep -E "^test result|SKIPPED|FAILED|panicked|^error" '
fi
say "done"
