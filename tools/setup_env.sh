#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment at ./.venv with the pinned OpenMMLab stack
# (see requirements/ and ../shared/specs/environment.md). Idempotent: on a ready machine it only
# checks a stamp and a few imports, which takes seconds.
#
# Usage: bash tools/setup_env.sh            # install what is missing
#        FORCE=1 bash tools/setup_env.sh    # redo every step
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMDYN_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3.11}"
STAMP="$VENV/.mmdynamic-setup"
WHEELS="$ROOT/../shared/wheels"
cd "$ROOT"

command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3
fingerprint() {
    cat requirements/*.txt setup.py tools/setup_env.sh | sha256sum | cut -d' ' -f1
}
ready() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ] &&
        "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import mmcv.ops, mmengine, torchvision, mmdynamic  # noqa: F401
PY
}

if [ -z "${FORCE:-}" ] && ready; then
    echo "[setup_env] $VENV is ready."
    exit 0
fi

echo "[setup_env] preparing $VENV (first run: a few minutes; ~13 more if mmcv must be compiled)"
[ -x "$VENV/bin/python" ] || "$PYTHON_BIN" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -c requirements/constraints.txt)

"${PIP[@]}" -q -r requirements/build.txt
# torch first: the CUDA build from the registry (it also runs on CPU). See requirements/torch.txt.
"${PIP[@]}" -r requirements/torch.txt
# mmcv with its compiled ops. The prebuilt wheel in ../shared/wheels, when present and matching, only
# saves the compile; without it pip builds the source distribution against the torch above.
FIND_LINKS=()
[ -d "$WHEELS" ] && FIND_LINKS=(--find-links "$WHEELS")
MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
    "${PIP[@]}" --no-build-isolation "${FIND_LINKS[@]}" -r requirements/mminstall.txt
"${PIP[@]}" -r requirements/runtime.txt -r requirements/cls.txt -r requirements/det.txt \
    -r requirements/seg.txt -r requirements/action.txt -r requirements/tests.txt
"${PIP[@]}" --no-deps --no-build-isolation -e .

"$VENV/bin/python" - <<'PY'
import torch, torchvision, mmcv, mmcv.ops, mmengine  # noqa: F401
import mmdynamic  # noqa: F401  (applies the compatibility layer)
import mmpretrain.models, mmdet.models, mmseg.models, mmaction.models  # noqa: F401
print(f'[setup_env] torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmcv {mmcv.__version__}, mmengine {mmengine.__version__}')
PY
# mmdynamic's C++ operators (SAR's sparse_impl='halo_cpp'): compiled now so that the first use does
# not wait for it (about a minute on 2 cores; reused from ~/.cache/mmdynamic/extensions). Without a C++
# compiler the rest of the package works and selecting the operator raises an error that says why.
"$VENV/bin/python" - <<'PY' || echo "[setup_env] warning: the C++ operators were not built (see above)"
from mmdynamic.ops.build import OpBuildError
from mmdynamic.ops.sar_cells import sar_cells_op
try:
    sar_cells_op()
    print('[setup_env] C++ operators built')
except OpBuildError as error:
    print(f'[setup_env] warning: C++ operators not built: {error}')
PY
fingerprint > "$STAMP"
echo "[setup_env] $VENV is ready."
