#!/usr/bin/env bash
# One-step set-up and run for surgplan on Debian/Ubuntu (root or sudo) or any Linux with Python 3.12.
#
#   bash scripts/setup.sh demo    # install everything, then run `surgplan demo` on the sample data
#   bash scripts/setup.sh test    # install everything, then run the test suite
#   bash scripts/setup.sh         # install only
#
# Installs the Debian packages the stack needs (when apt-get is available and we may use it),
# creates .venv with Python 3.12 (found on PATH or under pyenv), and installs the project with its
# test extras. Re-running is cheap: pip is skipped while pyproject.toml is unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
DEBIAN_PACKAGES=(libusb-1.0-0 gcc libc6-dev libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri libgomp1 libglu1-mesa libxrender1
  xvfb xauth libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0
  libxcb-xinerama0 libxcb-randr0 libxcb-xfixes0 libxcb-sync1 libxcb-xkb1 libxkbcommon0 libdbus-1-3 libfontconfig1)

log() { printf '[setup] %s\n' "$*" >&2; }

install_debian_packages() {
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get: make sure ${DEBIAN_PACKAGES[*]} are installed"; return 0; }
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "need root to install: ${missing[*]}"; exit 1; }
    sudo="sudo"
  fi
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

find_python312() {
  if [ -n "${SURGPLAN_PYTHON:-}" ]; then echo "$SURGPLAN_PYTHON"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -n 1 || true)
    if [ -n "$version" ]; then echo "$(pyenv prefix "$version")/bin/python3.12"; return; fi
  fi
  for candidate in python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  log "Python 3.12 not found (DOLFINx's wheel needs it): install it or set SURGPLAN_PYTHON=/path/to/python3.12"
  exit 1
}

install_python_packages() {
  local python stamp
  python="$(find_python312)"
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
    log "creating $VENV with $python"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
  fi
  stamp="$VENV/.surgplan-installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(sha256sum pyproject.toml | cut -d' ' -f1)" ]; then
    return 0
  fi
  log "installing surgplan and its dependencies into $VENV (first time: a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[test]"
  log "compiling the real-time registration kernels (cached by Numba)"
  "$VENV/bin/python" -c "from registration.realtime import precompile; precompile()"
  log "compiling the twin's kernels (cached by Numba)"
  "$VENV/bin/python" -c "from surgplan.twin.warmup import precompile; precompile()"
  sha256sum pyproject.toml | cut -d' ' -f1 > "$stamp"
}

install_debian_packages
install_python_packages
export PATH="$VENV/bin:$PATH"

case "${1:-}" in
  demo) shift; exec "$VENV/bin/surgplan" demo "$@" ;;
  test) shift; exec "$VENV/bin/python" -m pytest "$@" ;;
  "") log "ready: activate with 'source .venv/bin/activate'" ;;
  *) log "unknown action '$1' (expected demo or test)"; exit 2 ;;
esac
