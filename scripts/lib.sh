# Shared by scripts/console and scripts/test: where builds and tools are cached, and how
# missing system packages, the Rust toolchain and tauri-driver are installed.
# Sourced, not run.

CK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CK_CACHE=${CLOUDKEEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudkeep}
# One target directory outside the clone: a fresh clone (as in CI) reuses earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CK_CACHE/target}
CK_TOOLS=$CK_CACHE/tools
export PATH="$CK_TOOLS/bin:$HOME/.cargo/bin:$PATH"

# Packages the console needs to build and run (RECIPES.md: WebKitGTK 4.1 and its driver
# come from one apt line so their versions match).
CK_BUILD_PACKAGES=(libwebkit2gtk-4.1-dev libdbus-1-dev build-essential pkg-config curl ca-certificates)
CK_RUN_PACKAGES=(xvfb xauth fonts-dejavu-core)
# Extra packages for the test suite: WebDriver for WebKitGTK, window/screenshot tools, and
# PostgreSQL 15 (the metadata store is tested against a real server).
# faketime: a gateway started days ahead (insider-protection windows end without waiting).
# The second line: recovery media made and booted in QEMU (the distribution's kernel, GRUB for
# BIOS and UEFI, OVMF, BusyBox, extlinux for the test's own bootable disk).
CK_TEST_PACKAGES=(webkit2gtk-driver x11-utils x11-apps netpbm postgresql-15 gnome-keyring dbus-daemon faketime fdisk dosfstools mtools ntfs-3g qemu-utils fuse3 systemd
  qemu-system-x86 ovmf linux-image-amd64 kmod busybox-static grub-common grub-pc-bin grub-efi-amd64-bin
  xorriso extlinux syslinux-common cpio python3-venv python3-aiosmtpd iproute2 curl iputils-ping)

ck_say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
ck_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ck_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else ck_die "installing system packages needs root; run as root or install sudo"
  fi
}

# Installs whichever of the given Debian/Ubuntu packages are missing.
ck_ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || ck_die "missing packages ${missing[*]}, and this is not a Debian/Ubuntu system: install them with your package manager"
  ck_say "installing system packages: ${missing[*]}"
  ck_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  ck_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Makes sure cargo, rustfmt and clippy of Rust >= 1.90 are there (rustup if missing).
ck_ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    ck_say "installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile default
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  local minor
  minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
  if [ "${minor:-0}" -lt 90 ]; then
    command -v rustup >/dev/null 2>&1 || ck_die "Rust 1.90 or newer is needed (found $(rustc --version)); install it with rustup"
    ck_say "updating Rust (found $(rustc --version), need 1.90+)"
    rustup update stable
  fi
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || ck_die "cargo fmt and cargo clippy are needed; install rustfmt and clippy for $(rustc --version)"
    ck_say "adding rustfmt and clippy"
    rustup component add rustfmt clippy
  fi
}

# tauri-driver, cached outside the clone.
ck_ensure_tauri_driver() {
  if ! command -v tauri-driver >/dev/null 2>&1; then
    ck_say "installing tauri-driver into $CK_TOOLS"
    cargo install --quiet --locked --root "$CK_TOOLS" tauri-driver@2.1.0
  fi
}

# axe-core (the accessibility checker the console's end-to-end suite injects), from npm's
# registry, pinned by version and checked against the registry's SHA-512 integrity.
CK_AXE_VERSION=4.14.1
CK_AXE_SHA512=FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
export CLOUDKEEP_AXE=$CK_TOOLS/axe-core-$CK_AXE_VERSION/axe.min.js
ck_ensure_axe() {
  [ -f "$CLOUDKEEP_AXE" ] && return 0
  ck_say "fetching axe-core $CK_AXE_VERSION from the npm registry"
  local tmp
  tmp=$(mktemp -d)
  curl -fsSL "https://registry.npmjs.org/axe-core/-/axe-core-$CK_AXE_VERSION.tgz" -o "$tmp/axe.tgz" || return 1
  if [ "$(openssl dgst -sha512 -binary "$tmp/axe.tgz" | base64 -w0)" != "$CK_AXE_SHA512" ]; then
    echo "axe-core tarball does not match its registry integrity" >&2; rm -rf "$tmp"; return 1
  fi
  tar -xzf "$tmp/axe.tgz" -C "$tmp" package/axe.min.js || return 1
  mkdir -p "$(dirname "$CLOUDKEEP_AXE")"
  mv "$tmp/package/axe.min.js" "$CLOUDKEEP_AXE"
  rm -rf "$tmp"
}

# Garage, the S3 store the object-storage suites run a real three-node cluster of; its build
# takes about 20 minutes, so the binary is cached outside the clone (and its build folder, so
# an interrupted build resumes).
CK_GARAGE_VERSION=2.5.0
export CLOUDKEEP_GARAGE=$CK_TOOLS/bin/garage
ck_ensure_garage() {
  if [ -x "$CLOUDKEEP_GARAGE" ] && "$CLOUDKEEP_GARAGE" --version 2>/dev/null | grep -q "$CK_GARAGE_VERSION"; then
    return 0
  fi
  ck_say "building Garage $CK_GARAGE_VERSION into $CK_TOOLS (about 20 minutes, once)"
  cargo install --quiet --locked --root "$CK_TOOLS" --target-dir "$CK_CACHE/garage-build" \
    "garage@$CK_GARAGE_VERSION"
}

# Moto's S3 server (PyPI), the one S3 store packaged here that has Object Lock (Garage answers
# "not implemented"): the immutable-repository test runs against it. In a virtual environment
# cached outside the clone, with boto3 (its dependency), the ordinary S3 client the test uses
# as an attacker holding the bucket's keys.
CK_MOTO_VERSION=5.2.6
export CLOUDKEEP_MOTO=$CK_TOOLS/moto-$CK_MOTO_VERSION
ck_ensure_moto() {
  [ -x "$CLOUDKEEP_MOTO/bin/moto_server" ] && return 0
  ck_say "installing Moto $CK_MOTO_VERSION (an S3 server with object lock) into $CLOUDKEEP_MOTO"
  rm -rf "$CLOUDKEEP_MOTO"
  python3 -m venv "$CLOUDKEEP_MOTO" \
    && "$CLOUDKEEP_MOTO/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$CK_MOTO_VERSION"
}

ck_ensure_cargo_fuzz() {
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    ck_say "installing cargo-fuzz into $CK_TOOLS"
    cargo install --quiet --locked --root "$CK_TOOLS" cargo-fuzz@0.13.2
  fi
}

# True when a graphical session is available.
ck_have_display() { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }

# The benchmark tree of 1,100,000 files (1,000 folders of 1,000 small files, and "big" with
# 100,000), made once in DIR (a marker file DIR.done says it is complete).
ck_bench_tree() {
  local tree=$1
  [ -f "$tree.done" ] && return 0
  ck_say "creating 1,100,000 files in $tree"
  rm -rf "$tree"
  python3 - "$tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(1000):
    folder = os.path.join(root, f"dir{d:04}")
    os.makedirs(folder)
    for f in range(1000):
        with open(os.path.join(folder, f"file{f:04}.txt"), "w") as fh:
            fh.write(f"{d}/{f}\n")
big = os.path.join(root, "big")
os.makedirs(big)
for f in range(100000):
    with open(os.path.join(big, f"f{f:06}"), "w") as fh:
        fh.write(str(f))
PY
  touch "$tree.done"
}

# Windows, cross-built and run under Wine (RECIPES.md): Debian's own Rust (rustc-web) builds
# the standard library for x86_64-pc-windows-gnu from rust-web-src, MinGW links it, and Wine 8
# runs it. Its own target directory and Wine prefix, cached like the rest.
CK_WINDOWS_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-clippy gcc-mingw-w64-x86-64 wine wine64)
CK_WIN_TARGET=x86_64-pc-windows-gnu
CK_WIN_TARGET_DIR=$CK_CACHE/win-target
export WINEPREFIX=${WINEPREFIX:-$CK_CACHE/wine}

# cargo for Windows: `ck_win_cargo build -p cloudkeep-cli` and so on.
ck_win_cargo() {
  local command=$1
  shift
  env PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CK_WIN_TARGET_DIR" \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
    /usr/bin/cargo "$command" --locked -Zbuild-std=std,panic_abort --target "$CK_WIN_TARGET" "$@"
}

# A built Windows binary: `ck_win_exe cloudkeep` is the path of cloudkeep.exe.
ck_win_exe() { echo "$CK_WIN_TARGET_DIR/$CK_WIN_TARGET/debug/$1.exe"; }

# The Wine prefix, with the stand-in for bcryptprimitives.dll that Wine 8 lacks and every
# recent Rust standard library imports (scripts/windows/bcryptprimitives.c).
ck_ensure_wine_prefix() {
  local dll=$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll
  local src=$CK_ROOT/scripts/windows/bcryptprimitives.c
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    ck_say "creating the Wine prefix $WINEPREFIX"
    WINEDEBUG=-all wineboot -i >/dev/null 2>&1 || return 1
  fi
  if [ ! -f "$dll" ] || [ "$src" -nt "$dll" ]; then
    x86_64-w64-mingw32-gcc -shared -O2 -o "$dll" "$src" \
      "$CK_ROOT/scripts/windows/bcryptprimitives.def" -ladvapi32 || return 1
  fi
}

# Keeps the build caches from filling the disk: below 20 GiB free, the incremental caches of
# earlier builds go, then the Windows build, then the whole build cache (all rebuilt when
# needed: slower, never a failed run).
ck_keep_disk_space() {
  local free
  free=$(df -Pk "$CK_CACHE" 2>/dev/null | awk 'NR == 2 { print int($4 / 1048576) }')
  [ "${free:-100}" -ge 20 ] && return 0
  ck_say "only ${free} GiB free: removing incremental build caches"
  rm -rf "$CARGO_TARGET_DIR"/*/incremental "$CK_WIN_TARGET_DIR"/*/*/incremental "$CK_WIN_TARGET_DIR"/*/incremental
  free=$(df -Pk "$CK_CACHE" 2>/dev/null | awk 'NR == 2 { print int($4 / 1048576) }')
  if [ "${free:-100}" -lt 20 ]; then
    ck_say "still ${free} GiB free: removing the Windows build (rebuilt by the Windows step)"
    rm -rf "$CK_WIN_TARGET_DIR"
    free=$(df -Pk "$CK_CACHE" 2>/dev/null | awk 'NR == 2 { print int($4 / 1048576) }')
  fi
  if [ "${free:-100}" -lt 20 ]; then
    ck_say "still ${free} GiB free: starting the build cache afresh"
    rm -rf "$CARGO_TARGET_DIR"
  fi
}
