#!/usr/bin/env bash
# Regenerates every fixture under Tests/Fixtures from the reference scripts.
# Needs: a Python with requirements.txt installed (PYTHON=..., default python3),
# $LANGTUNE_HOME (default ~/.cache/langtune) filled by scripts/fetch-models.sh,
# $SHARED_DATA (default ../shared/data beside the repo root).
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
"$py" Tests/Reference/make_hard_cases.py
"$py" Tests/Reference/tokenizer_fixtures.py
"$py" Tests/Reference/chat_fixtures.py
"$py" Tests/Reference/gguf_fixtures.py
"$py" Tests/Reference/model_fixtures.py
"$py" Tests/Reference/tiny_llama3.py
git status --short Tests/Fixtures
