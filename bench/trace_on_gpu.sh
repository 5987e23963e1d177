#!/usr/bin/env bash
# The tracer on a CUDA machine, in one go: its tests (the CUDA one included) and the
# overhead benchmark on the GPU. For the lent H200 (python3 there has torch, pytest and
# hypothesis; libcst travels as wheels in .whl, see /work/.library/device/README.md):
#
#   run(command="bash bench/trace_on_gpu.sh", carry=[".whl"], timeout_s=420)
#
# Prints the test summary and the benchmark's medians; the log goes to $OUT when set.
set -uo pipefail
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 2
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log="${OUT:-/tmp}/trace_on_gpu.log"
{
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_trace.py \
        tests/test_trace_logic.py tests/test_trace_runtime.py 2>&1 | tail -15
    timeout 120 python3 bench/bench_trace.py --device cuda --runs 50
    timeout 60 python3 bench/bench_trace.py --device cpu --runs 20
} 2>&1 | tee "$log"
