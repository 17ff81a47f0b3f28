# Sourced by bin/dev and bin/test: make .venv with Python 3.11 or newer and install the project.
# Reinstalls only when pyproject.toml changed since the last install.
find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Keyward needs Python 3.11 or newer (set PYTHON=/path/to/python3)" >&2
  return 1
}

ensure_venv() {
  local extra="$1"
  local stamp=".venv/.installed${extra}"
  if [ ! -x .venv/bin/python ]; then
    echo "==> Creating .venv"
    "$(find_python)" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "==> Installing Keyward${extra} into .venv (first run takes a minute)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".${extra}"
    touch "$stamp"
  fi
}
