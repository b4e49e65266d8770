#!/usr/bin/env bash
# One lease of the lent GPU for training (developer tool; see the model card): trains several
# variants of the pairs objective side by side on the GPU, then checks each on held-out photos.
# Usage there:  MINUTES=5.5 bash tools/gpu_train.sh   (photos carried in .gpu-data/{train,test})
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/psenet-train-out}
MINUTES=${MINUTES:-5.5}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT" runs/gpu
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
DATA=.gpu-data/train
common="--data $DATA --device $DEVICE --minutes $MINUTES --steps 1000000 --batch 32 --lr 1e-3 --val-every 200 --val-count 10 --threads 2 --quiet --ev-under=-3,-0.25 --ev-over=0.25,2.5 --p-clean 0.25"
declare -A V=(
  [pairs-camera]="--objective pairs --family camera"
  [pairs-linear]="--objective pairs --family linear"
  [pairs-camera-over65]="--objective pairs --family camera --p-over 0.65"
  [pairs-camera-wide]="--objective pairs --family camera --crop 192 --scale 0.25,0.6"
  [pairs-camera-tv01]="--objective pairs --family camera --alpha 0.1"
)
echo "=== train $(date +%T): ${!V[*]}"
for name in "${!V[@]}"; do
  python3 -m psenet_stream train $common ${V[$name]} --out runs/gpu/$name > runs/gpu/$name.log 2>&1 &
done
wait
echo "=== heldout $(date +%T)"
for name in "${!V[@]}"; do tail -2 runs/gpu/$name.log; done
python3 -m train.heldout .gpu-data/test runs/gpu/*/best.pt --side 512 --threads 8 --device $DEVICE --json "$OUT/heldout.json" 2>&1 | tee "$OUT/heldout.txt"
tar czf "$OUT/runs.tgz" runs/gpu
echo "=== done $(date +%T)"
