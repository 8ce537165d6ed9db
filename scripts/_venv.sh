# Sourced by start.sh and test.sh: create .venv and install a requirements file when it changed.
ensure_venv() {
  local requirements=$1 stamp
  local python=${PYTHON:-python3}
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  stamp=".venv/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-${requirements%.txt}"
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements" 2>&1 \
      | grep -v "is ignored: it is neither a file nor a directory" || true
    .venv/bin/python -c "import numpy, streamlit" >/dev/null
    touch "$stamp"
  fi
}
