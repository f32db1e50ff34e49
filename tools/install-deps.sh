#!/usr/bin/env bash
# Installs everything moescope needs to build, test and run on Debian 12, from Debian's packages.
# Idempotent: packages already present are left alone. Runs as root, or through sudo.
#
#   tools/install-deps.sh            build + runtime + test dependencies (C++ only)
#   tools/install-deps.sh --python   also the PyPI packages used by tests/tools (golden generators,
#                                    training scripts); never needed at run time or in CI
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libspdlog-dev libfmt-dev nlohmann-json3-dev libpcre2-dev libicu-dev
  libcpp-httplib-dev         # moescope-cli serve (HTTP server) and its test's client
  qt6-base-dev qt6-base-dev-tools qt6-svg-dev libqcustomplot-dev libgl-dev
  xvfb xauth
  clang libclang-rt-14-dev   # libFuzzer targets (tests/fuzz), run briefly by CI
  dpkg-dev file              # the Debian package (cpack -G DEB: dpkg-shlibdeps, file)
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

if [ "${1:-}" = "--python" ]; then
  python3 -m pip install -q numpy torch transformers tokenizers safetensors jinja2
fi
