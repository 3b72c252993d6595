#!/usr/bin/env bash
# Builds the project-local Python environment (.venv) that holds the
# reference peers: Debian's python3-torch 1.13 (through system site packages)
# plus pinned transformers, tokenizers, peft, sacrebleu from PyPI. peft and accelerate go
# in with --no-deps: Debian's torch calls itself 1.13.0a0, which pip would
# "upgrade" by pulling gigabytes of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/reference/requirements.txt
req2=tests/reference/requirements-nodeps.txt
stamp=.venv/.installed
if [ -f "$stamp" ] && cat "$req" "$req2" | cmp -s - "$stamp"; then exit 0; fi
echo "setup-python: building .venv with pinned peers" >&2
/usr/bin/python3 -m venv --system-site-packages .venv
.venv/bin/pip install -q --disable-pip-version-check -r "$req"
.venv/bin/pip install -q --disable-pip-version-check --no-deps -r "$req2"
.venv/bin/python -c "import torch, transformers, tokenizers, peft, sacrebleu; print('setup-python: torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, 'peft', peft.__version__, 'sacrebleu', sacrebleu.__version__)" >&2
cat "$req" "$req2" > "$stamp"
