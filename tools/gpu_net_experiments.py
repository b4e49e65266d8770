"""Full-resolution network speed experiments on a GPU (developer tool).

    python tools/gpu_net_experiments.py [--size 1920x1080] [--batch 8]

Prints a per-kernel profile of the fp16 network at full resolution, then times variants
(eager cudnn, CUDA graph, torch.compile modes) with CUDA events.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_profile import cuda_ms  # noqa: E402  (the same CUDA-event timer as the stage profile)


@torch.inference_mode()
def main() -> None:
    from psenet_stream.weights_io import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--modes", default="default,max-autotune-no-cudagraphs")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    model, _ = load_model(None)
    torch.backends.cudnn.benchmark = True
    m = copy.deepcopy(model).cuda().half().eval().to(memory_format=torch.channels_last)
    x = torch.rand((a.batch, 3, h, w), device="cuda").half().contiguous(memory_format=torch.channels_last)
    base = cuda_ms(lambda: m.gamma(x))
    print(f"eager fp16 NHWC: {base:.2f} ms / batch {a.batch} -> {a.batch / base * 1e3:.0f} fps")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            m.gamma(x)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=70))
    m32 = copy.deepcopy(model).cuda().eval()
    x32 = x.float().contiguous()
    t = cuda_ms(lambda: m32.gamma(x32))
    print(f"eager fp32 NCHW: {t:.2f} ms -> {a.batch / t * 1e3:.0f} fps")
    ref = m32.gamma(x32)
    for mode in a.modes.split(","):
        try:
            t0 = time.perf_counter()
            f = torch.compile(m.gamma, mode=mode, dynamic=False)
            y = f(x)
            torch.cuda.synchronize()
            ct = time.perf_counter() - t0
            t = cuda_ms(lambda: f(x))
            err = (y.float() - ref).abs().max().item()
            print(f"compile {mode}: {t:.2f} ms -> {a.batch / t * 1e3:.0f} fps (compile {ct:.0f} s, max |diff| vs fp32 {err:.3g})")
        except Exception as e:
            print(f"compile {mode}: failed {type(e).__name__}: {str(e)[:300]}")


if __name__ == "__main__":
    main()
