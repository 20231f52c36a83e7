#!/usr/bin/env bash
# Make .venv ready for vsugsp: find a Python >= 3.12, create the venv if it is
# missing, install the project editable with its extras. Safe to run often:
# when the venv was set up from the same setup.cfg/pyproject.toml it returns
# at once (stamp file inside the venv). Also registers the venv for vspipe
# (`vapoursynth config`).
#
# Environment:
#   VSUGSP_PYTHON  interpreter to use (checked first)
#   VSUGSP_VENV    venv folder (default: <repo>/.venv)
#   VSUGSP_EXTRAS  extras to install (default: dev,train,bench,prior,distributed; add cuda on a GPU box)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VSUGSP_VENV:-$root/.venv}
extras=${VSUGSP_EXTRAS:-dev,train,bench,prior,distributed}
stamp=$venv/.vsugsp-bootstrap

say() { echo "bootstrap: $*" >&2; }

# True when "$1" runs and is Python >= 3.12. pyenv shims for versions that
# are installed but not selected exist on PATH and fail when run, so running
# the candidate is the only reliable test.
new_enough() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  local c r
  if [ -n "${VSUGSP_PYTHON:-}" ]; then
    if new_enough "$VSUGSP_PYTHON"; then echo "$VSUGSP_PYTHON"; return 0; fi
    say "VSUGSP_PYTHON=$VSUGSP_PYTHON is not a working Python >= 3.12"
    return 1
  fi
  for c in python3.13 python3.12 python3; do
    if command -v "$c" >/dev/null 2>&1 && new_enough "$c"; then command -v "$c"; return 0; fi
  done
  # pyenv: use the interpreter inside the version folder directly, since its
  # shim only works when that version is selected (PYENV_VERSION).
  r=""
  if command -v pyenv >/dev/null 2>&1; then r=$(pyenv root 2>/dev/null || true); fi
  [ -n "$r" ] || r=${PYENV_ROOT:-$HOME/.pyenv}
  for c in "$r"/versions/3.1[2-9]*/bin/python3.1[2-9]; do
    if [ -x "$c" ] && new_enough "$c"; then echo "$c"; return 0; fi
  done
  return 1
}

want_stamp() {
  # What the installed venv must have been made from: build files, this
  # script, extras.
  cat "$root/setup.cfg" "$root/pyproject.toml" "${BASH_SOURCE[0]}" 2>/dev/null | sha256sum | cut -d' ' -f1
  echo "extras=$extras"
}

if [ -x "$venv/bin/python" ]; then
  if ! new_enough "$venv/bin/python"; then
    say "$venv exists but its Python is older than 3.12 or broken; remove it and run again"
    exit 1
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(want_stamp)" ] \
     && "$venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("vsugsp") is None)' 2>/dev/null; then
    exit 0
  fi
else
  py=$(find_python) || {
    say "no Python >= 3.12 found (tried \$VSUGSP_PYTHON, python3.13, python3.12, python3, pyenv versions)."
    say "install one (e.g. 'pyenv install 3.12' or Debian 13's python3) or set VSUGSP_PYTHON=/path/to/python3.12"
    exit 1
  }
  say "using $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
  if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    say "$py cannot create virtual environments (no venv/ensurepip module)."
    say "on Debian/Ubuntu: apt-get install python3-venv (or python3.X-venv for that version)"
    exit 1
  fi
  "$py" -m venv "$venv" || {
    say "'$py -m venv $venv' failed; on Debian/Ubuntu install python3-venv"
    exit 1
  }
fi

say "installing vsugsp (editable, extras: $extras) into $venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip >&2
"$venv/bin/python" -m pip install --disable-pip-version-check -q -e "$root[$extras]" >&2
# vspipe (a C++ program) finds this venv's Python through an entry that
# `vapoursynth config` adds to ~/.config/vapoursynth/vapoursynth.toml.
if [ -x "$venv/bin/vapoursynth" ] && ! "$venv/bin/vapoursynth" config >/dev/null 2>&1; then
  say "warning: 'vapoursynth config' failed; vspipe may not find this venv's Python"
fi
want_stamp > "$stamp"
say "ready: $venv/bin/python"
