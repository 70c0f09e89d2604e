#!/usr/bin/env bash
# The full profiles on one CUDA GPU, cut to a few steps or one short epoch (about 8 minutes on an H100):
# every notebook, the twelve LM configurations, the CIFAR-10 full recipe with torch.compile; the summary
# goes to build/gpu_check/summary.{md,json}. See benchmarks/gpu_check.py for the plan.
#
#   COURSE_DATA_DIR=/path/to/data benchmarks/gpu_check.sh            # on the GPU machine
#   benchmarks/gpu_check.sh --dry-run                                # anywhere: the plan, overrides checked
#
# PYTHON (default python3) must have course_lib's dependencies, papermill and a "python3" Jupyter kernel
# of the same environment. Without a CUDA GPU it says so and exits with status 2 before running anything.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
for arg in "$@"; do
    if [[ $arg == --dry-run ]]; then
        exec "$PYTHON" benchmarks/gpu_check.py "$@"
    fi
done
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi finds none); nothing was run" >&2
    exit 2
fi
if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: $PYTHON's torch sees no CUDA GPU (torch.cuda.is_available() is False, or no torch);" \
         "nothing was run" >&2
    exit 2
fi
if ! "$PYTHON" -c "import papermill, jupyter_client; jupyter_client.kernelspec.get_kernel_spec('python3')" \
        2>/dev/null; then
    echo "gpu_check: $PYTHON lacks papermill or a 'python3' Jupyter kernel" \
         "(pip install papermill ipykernel && $PYTHON -m ipykernel install --user); nothing was run" >&2
    exit 2
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"
