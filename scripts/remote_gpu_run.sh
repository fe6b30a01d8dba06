#!/usr/bin/env bash
# A time-boxed training run on a remote GPU machine. The machine receives a copy of the
# repository tree plus the small bundle of extra files in .remote/ (written by
# scripts/prepare_remote_bundle.py), and runs this script from the repository root. It checks
# the GPU kernels, trains CONFIG for TRAIN_SECONDS from .remote/init.safetensors when present,
# else from the bundled model of the config's family, and leaves everything under $OUT: logs,
# the exported fp16 weights split into CHUNK_MIB-MiB chunks (join:
# cat model.safetensors.part-* > m), and the training CSV.
#   OUT=out TRAIN_SECONDS=360 CHUNK_MIB=15 bash scripts/remote_gpu_run.sh
#   CONFIG=configs/remote-gpu-motion.toml bash scripts/remote_gpu_run.sh   # learned motion
# Settings (environment): CONFIG (default configs/remote-gpu-l1.toml), OUT (default out),
# TRAIN_SECONDS (default 360), CHUNK_MIB (size of the weight chunks in MiB, default 15),
# SKIP_BENCH=1 skips the speed benchmark.
# The remote machine needs torch/triton/numpy/pillow/scikit-image/safetensors but not PyAV:
# the package runs from src/ without installing.
set -uo pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-out}"
TRAIN_SECONDS="${TRAIN_SECONDS:-360}"
CHUNK_MIB="${CHUNK_MIB:-15}"
CONFIG="${CONFIG:-configs/remote-gpu-l1.toml}"
mkdir -p "$OUT"
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" | tee "$OUT/versions.txt"

timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu tests/ops/test_triton_kernels.py \
  tests/data/test_synthetic.py > "$OUT/gpu_tests.txt" 2>&1
tail -n 3 "$OUT/gpu_tests.txt"
timeout 120 python3 benchmarks/gpu_check_ops.py > "$OUT/gpu_check_ops.txt" 2>&1
tail -n 12 "$OUT/gpu_check_ops.txt"
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  timeout 240 python3 benchmarks/bench_speed.py --device cuda --sizes 720p 1080p 2160p \
    --json "$OUT/speed-gpu.json" > "$OUT/bench_speed.txt" 2>&1
  tail -n 16 "$OUT/bench_speed.txt"
fi

config="$OUT/config.json"
python3 - "$config" "$CONFIG" <<'PY'
import json, sys, tomllib
from pathlib import Path
config = tomllib.loads(Path(sys.argv[2]).read_text())
bundled = {"sepconv": "sepconv-l1", "motion-sepconv": "sepconv-motion"}.get(
    config.get("model", {}).get("architecture", "sepconv")
)
candidates = [".remote/init.safetensors"]
if bundled:
    candidates.append(f"src/sepconv/weights/files/{bundled}.safetensors")
for init in candidates:
    if Path(init).is_file():
        config["init_weights"] = init
        break
Path(sys.argv[1]).write_text(json.dumps(config, indent=2))
print(config["output_dir"], file=open(sys.argv[1] + ".dir", "w"))
PY
run_dir="$(cat "$config.dir")"
timeout $((TRAIN_SECONDS + 120)) python3 -m sepconv train --config "$config" \
  --time-limit "$TRAIN_SECONDS" > "$OUT/train.txt" 2>&1
tail -n 5 "$OUT/train.txt"
if [ -f "$run_dir/model.safetensors" ]; then
  split -b "${CHUNK_MIB}M" -d "$run_dir/model.safetensors" "$OUT/model.safetensors.part-"
  cp "$run_dir"/*.csv "$OUT/" 2>/dev/null || true
fi
ls -la "$OUT"
