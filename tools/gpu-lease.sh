#!/usr/bin/env bash
# One lease of the lent GPU machine (developer tool; see docs/GPU.md): install the wheels
# carried in .whl/, then run the GPU tests, a CLI run, the stage profile and the bench.
# Usage there:  bash tools/gpu-lease.sh [tests] [cli] [profile] [bench]   (default: all)
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/psenet-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
steps=${*:-tests cli profile bench}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,temperature.gpu --format=csv
nproc
python3 -c "import torch,av,cv2,onnxruntime as o;print('torch',torch.__version__,'cuda',torch.version.cuda,'av',av.__version__,'cv2',cv2.__version__,'ort',o.__version__,o.get_available_providers())"
for s in $steps; do
  echo "=== $s $(date +%T)"
  case $s in
    tests) python3 -m pytest -p no:cacheprovider tests/gpu -m "cuda or tensorrt" -v -rs --timeout 300 2>&1 | tee "$OUT/tests.log" ;;
    cli)
      python3 -m psenet_stream doctor 2>&1 | tee "$OUT/doctor.log"
      python3 -c "from psenet_stream.evaluation.bench import synthetic_scene, write_clip; from pathlib import Path; write_clip(Path('/tmp/clip.mp4'), synthetic_scene(1920,1080,240))"
      python3 -m psenet_stream /tmp/clip.mp4 -o /tmp/clip_out.mp4 --backend auto -v 2>&1 | tail -20 | tee "$OUT/cli.log" ;;
    profile)
      for sz in 1280x720 1920x1080 3840x2160; do python3 tools/gpu_profile.py --size $sz 2>&1 | tail -16; done | tee "$OUT/profile.log"
      python3 tools/gpu_profile.py --size 1920x1080 --infer full 2>&1 | tail -16 | tee -a "$OUT/profile.log" ;;
    bench) python3 -m psenet_stream bench --backends ${BENCH_BACKENDS:-cuda} --sizes ${BENCH_SIZES:-640x360,1280x720,1920x1080,3840x2160} --frames ${BENCH_FRAMES:-120} --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log" ;;
  esac
done
echo "=== done $(date +%T)"
