#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine, runs what was installed, and removes it
# again, checking that nothing is left behind. Needs root and dpkg/apt (exit 77 = skipped, for
# CTest, otherwise). Registered with CTest as `package` (label slow); it runs only with
# tools/test.sh's extra checks (MOESCOPE_CI_EXTRA=1) or when asked (MOESCOPE_PACKAGE_TEST=1),
# never by surprise: it installs a package on the machine (CI sets MOESCOPE_CI_EXTRA=1).
#
# Environment: MOESCOPE_PKG_BUILD_DIR (default build-pkg), MOESCOPE_CUDA_ARCHITECTURES (default 90,
# as in CI; a release sets the full list), MOESCOPE_PKG_JOBS (build parallelism, default nproc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MOESCOPE_PKG_BUILD_DIR:-$root/build-pkg}
case "$build" in /*) ;; *) build=$root/$build ;; esac

skip() { echo "test-package: SKIPPED: $*" >&2; exit 77; }
fail() { echo "test-package: FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

if [ "${MOESCOPE_CI_EXTRA:-0}" != 1 ] && [ "${MOESCOPE_PACKAGE_TEST:-0}" != 1 ]; then
  skip "installs a package on this machine: runs with MOESCOPE_CI_EXTRA=1 or MOESCOPE_PACKAGE_TEST=1"
fi
[ "$(id -u)" -eq 0 ] || skip "needs root (installs a package)"
command -v dpkg >/dev/null && command -v apt-get >/dev/null || skip "no dpkg/apt-get on this machine"
if dpkg-query -W -f='${Status}' moescope 2>/dev/null | grep -q 'install ok installed'; then
  skip "a moescope package is already installed here; not touching it"
fi

step "configure and build ($build)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOESCOPE_BUILD_TESTS=OFF \
  -DMOESCOPE_CUDA_PLUGIN=ON -DMOESCOPE_CUDA_ARCHITECTURES="${MOESCOPE_CUDA_ARCHITECTURES:-90}" >/dev/null
cmake --build "$build" -j "${MOESCOPE_PKG_JOBS:-$(nproc)}"
step "package"
rm -f "$build"/moescope_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/moescope_*.deb)
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb" | awk '{print $6}'

work=$(mktemp -d)
installed=0
copied_model=""
cleanup() {
  [ -n "$copied_model" ] && rm -rf "$copied_model"
  if [ "$installed" = 1 ]; then apt-get remove -y -q moescope >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step "install"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb"
installed=1
dpkg -L moescope > "$work/files"

# Run the installed programs from a neutral directory and with a private data/config location.
cd "$work"
export HOME=$work/home MOESCOPE_DATA_DIR=$work/data XDG_CONFIG_HOME=$work/config
mkdir -p "$HOME"

step "moescope-cli --version"
/usr/bin/moescope-cli --version || fail "moescope-cli --version"

model=/usr/share/moescope/models/moescope-tiny
if [ ! -f "$model/config.json" ]; then
  echo "(no bundled model in the package yet: using tests/data/models/chat-tiny in its place)"
  copied_model=$model
  mkdir -p "$model"
  cp "$root"/tests/data/models/chat-tiny/* "$model/"
fi
step "moescope-cli generate (bundled model, --backend auto)"
out=$(timeout 300 /usr/bin/moescope-cli generate --prompt "What is a mixture of experts?" --chat \
        --max-tokens 12 --seed 1 --backend auto) || fail "generate"
echo "$out"
[ -n "$out" ] || fail "generate printed nothing"

step "the programs need no CUDA library to start (the CUDA backend is a plugin)"
if ldd /usr/bin/moescope-cli | grep -E 'libcudart|libcublas|libcuda\.'; then fail "moescope-cli links CUDA"; fi
if [ -f /usr/lib/moescope/libmoescope_cuda.so ]; then
  echo "plugin: /usr/lib/moescope/libmoescope_cuda.so"
  # Without its libraries the plugin cannot load: auto falls back to the CPU, cuda says why.
  MOESCOPE_CUDA_PLUGIN=/nonexistent/libmoescope_cuda.so /usr/bin/moescope-cli generate --ids 1,2 --max-tokens 2 \
    --backend auto >/dev/null || fail "--backend auto without a loadable plugin"
fi
if ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }; then
  set +e
  msg=$(/usr/bin/moescope-cli generate --ids 1,2 --max-tokens 2 --backend cuda 2>&1 >/dev/null)
  rc=$?
  set -e
  echo "--backend cuda without a GPU: exit $rc: $msg"
  [ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$msg" | wc -l)" -eq 1 ] || fail "--backend cuda without a GPU: not one clear line"
fi

step "moescope-cli inspect --preset deepseek-r1 (installed presets)"
/usr/bin/moescope-cli inspect --preset deepseek-r1 | head -c 300; echo

if [ -x /usr/bin/moescope ]; then
  step "moescope --screenshot (offscreen)"
  QT_QPA_PLATFORM=offscreen timeout 180 /usr/bin/moescope --screenshot "$work/x.png" || fail "moescope --screenshot"
  [ -s "$work/x.png" ] || fail "no screenshot written"
  head -c 8 "$work/x.png" | od -An -c | grep -q 'P   N   G' || fail "the screenshot is not a PNG"
  echo "screenshot: $(stat -c %s "$work/x.png") bytes"
else
  echo "(the package has no desktop app: built without it)"
fi

step "remove"
if [ -n "$copied_model" ]; then rm -rf "$copied_model"; copied_model=""; fi
apt-get remove -y -q moescope
installed=0
left=0
while read -r f; do
  case "$f" in /usr/share/moescope*|/usr/lib/moescope*) ;; *) [ -d "$f" ] && continue ;; esac
  if [ -e "$f" ]; then echo "left behind: $f"; left=1; fi
done < "$work/files"
for d in /usr/share/moescope /usr/lib/moescope; do
  [ -e "$d" ] && { echo "left behind: $d"; left=1; }
done
[ "$left" = 0 ] || fail "files left after apt-get remove"
# The package has no conffiles; dpkg still keeps it as "config-files" until purged because it
# has maintainer scripts (CPack's ldconfig calls). Anything listed as a conffile would be a leak.
if [ -n "$(dpkg-query -W -f='${Conffiles}' moescope 2>/dev/null)" ]; then fail "conffiles left"; fi
dpkg --purge moescope >/dev/null
echo "test-package: OK"
