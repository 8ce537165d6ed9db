#!/usr/bin/env bash
# Install the runtime dependencies into .venv (once) and start the dashboard on 127.0.0.1:8501.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv requirements.txt
exec .venv/bin/python -m streamlit run app/streamlit_app.py "$@"
