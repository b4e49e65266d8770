"""Where the cuda backend's time goes, stage by stage, on a real GPU (developer tool).

    python tools/gpu_profile.py [--size 1920x1080] [--batch 8]

Times with CUDA events (median of many repeats, after warm-up): the uploads/downloads
of a batch, the network phase, the curve phase, the host copies into/out of pinned
memory, and the whole ``Enhancer.enhance_frames`` call. Prints one line per stage with
frames per second, so the slowest stage (the ceiling) is obvious.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def cuda_ms(fn, reps=50, warm=5):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def host_ms(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@torch.inference_mode()
def main() -> None:
    from psenet_stream.backends.cuda import CudaBackend, _Copier
    from psenet_stream.evaluation.bench import synthetic_scene
    from psenet_stream.enhancer import Enhancer, working_size
    from psenet_stream.weights_io import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--infer", default=None)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    b = a.batch
    model, meta = load_model(None)
    be = CudaBackend(model, meta, batch=b)
    enh = Enhancer(be, **({"infer_size": "full" if a.infer == "full" else int(a.infer)} if a.infer else {}))
    frames = synthetic_scene(w, h, b)
    enh.enhance_frames(frames)  # builds the ring, captures graphs
    ring = be._ring
    slot = ring.slots[0]
    sh, sw = working_size(h, w, enh.options.infer_size)
    rows = []

    def add(name, ms):
        rows.append((name, ms, b / ms * 1e3))

    add("H2D uint8 RGB batch (pinned)", cuda_ms(lambda: slot.d_in.copy_(slot.h_in, non_blocking=True)))
    add("D2H uint8 RGB batch (pinned)", cuda_ms(lambda: slot.h_out.copy_(slot.d_out, non_blocking=True)))
    if slot.graph_net is not None:
        add("network phase (graph)", cuda_ms(slot.graph_net.replay))
    lg = slot.d_lg
    add("gamma post-processing on the GPU", cuda_ms(lambda: enh.post(slot.d_gamma, slot.d_small)))
    add("network phase (eager)", cuda_ms(lambda: be._phase_net(slot, ring.down)))
    add(f"curve phase ({'fused' if be.fused else 'eager'})", cuda_ms(lambda: be._phase_curve(slot, enh.options.highlight_knee)))
    small = torch.rand((b, 3, sh, sw), device="cuda").half().contiguous(memory_format=torch.channels_last)
    add(f"network alone fp16 {sw}x{sh} (eager)", cuda_ms(lambda: be.net(small)))
    cp = be._copy
    dst = np.empty_like(frames)
    add(f"host copy numpy->pinned ({cp.threads} threads)", host_ms(lambda: cp(slot.n_in, frames)))
    add("host copy pinned->numpy", host_ms(lambda: cp(dst, slot.n_out)))
    one = _Copier(1)
    add("host copy, 1 thread", host_ms(lambda: one(slot.n_in, frames)))
    add("Enhancer.enhance_frames (whole)", host_ms(lambda: enh.enhance_frames(frames), reps=10))
    big = np.concatenate([frames] * 4)
    bigout = np.empty_like(big)
    add("enhance_frames, 4 batches per call, out=", host_ms(lambda: enh.enhance_frames(big, out=bigout), reps=5) / 4)
    from psenet_stream.colour import rgb_to_yuv420p_np as rgb_to_yuv420p

    ybig = np.stack([rgb_to_yuv420p(f) for f in big])
    yout = np.empty_like(ybig)
    add("enhance_yuv420p, 4 batches per call, out=", host_ms(lambda: enh.enhance_yuv420p(ybig, out=yout), reps=5) / 4)
    dev = torch.from_numpy(big).cuda()
    devout = torch.empty_like(dev)
    add("enhance_frames, frames on the GPU", cuda_ms(lambda: enh.enhance_frames(dev, out=devout), reps=10) / 4)
    g = np.random.default_rng(0).random((b, 3, sh, sw), dtype=np.float32) + 0.5
    add("gamma hook on the host (numpy)", host_ms(lambda: enh.post(g.copy(), g)))
    for hh, ww in ((144, 256), (h, w)):
        for bb in (1, b):
            for cl in (True,):
                xx = torch.rand((bb, 3, hh, ww), device="cuda").half()
                if cl:
                    xx = xx.contiguous(memory_format=torch.channels_last)
                ms = cuda_ms(lambda: be.net(xx), reps=10)
                rows.append((f"net fp16 {ww}x{hh} batch {bb} {'NHWC' if cl else 'NCHW'}", ms, bb / ms * 1e3))
    print(f"\n{torch.cuda.get_device_name()}  {w}x{h}  batch {b}  working size {sw}x{sh}")
    for name, ms, fps in rows:
        print(f"  {name:<44} {ms:8.3f} ms/batch  {fps:9.0f} fps")
    be.close()


if __name__ == "__main__":
    main()
