"""Measuring: quality metrics, photo and paired-folder evaluation, flicker, and the benchmark.

    metrics.py   PSNR / SSIM / the paper's no-reference score / clipped pixels (torch, numpy)
    photos.py    synthetic exposure errors on photo folders, paired folders, weight comparison
    flicker.py   frame-to-frame gamma and brightness changes of a clip
    bench.py     inference / file / live speed, transcode ratio, memory

Shipped with the CLI (``psenet-stream eval``, ``psenet-stream bench``); nothing in the
enhancement path imports this package.
"""
