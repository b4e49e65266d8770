"""A live source that falls behind is reported to the enhancer (pipeline -> note_backlog),
which runs the network less often (a higher k) before frames are dropped; files never are."""

from __future__ import annotations

import time

import numpy as np
import pytest

from psenet_stream import pipeline
from psenet_stream.io.frames import Frame, StreamInfo

pytestmark = pytest.mark.timeout(60)


class _Source:
    def __init__(self, n, live, period_s=0.0):
        self.n, self.period_s = n, period_s
        self.info = StreamInfo(width=12, height=8, live=live, frames=n)

    def __iter__(self):
        for i in range(self.n):
            if self.period_s:
                time.sleep(self.period_s)
            yield Frame(rgb=np.full((8, 12, 3), i % 256, np.uint8), index=i, t_capture=time.perf_counter())


class _Sink:
    def __init__(self):
        self.n = 0

    def write(self, frame, enhanced):
        self.n += 1

    def close(self):
        pass


class _Slow:
    """Takes ``delay_s`` per frame, and records every backlog report."""

    def __init__(self, delay_s):
        self.delay_s, self.reports = delay_s, []

    def enhance_frames(self, x):
        time.sleep(self.delay_s)
        return x

    def note_backlog(self, waiting):
        self.reports.append(waiting)


def test_a_live_source_faster_than_the_enhancer_reports_a_backlog():
    enh = _Slow(0.02)  # frames come every 2 ms, each takes 20 ms
    pipeline.run(_Source(60, live=True, period_s=0.002), enh, [_Sink()])
    assert enh.reports and max(enh.reports) >= 1
    assert sum(r > 0 for r in enh.reports) >= len(enh.reports) // 2


def test_a_live_source_that_keeps_up_reports_no_backlog():
    enh = _Slow(0.0)  # frames come every 20 ms, each takes ~0
    pipeline.run(_Source(15, live=True, period_s=0.02), enh, [_Sink()])
    assert enh.reports and max(enh.reports) == 0


def test_a_file_run_never_reports_a_backlog():
    enh = _Slow(0.0)
    sink = _Sink()
    pipeline.run(_Source(20, live=False), enh, [sink], batch=4)
    assert enh.reports == [] and sink.n == 20


def test_the_enhancer_raises_k_from_the_reports_and_lowers_it_again():
    from psenet_stream import Enhancer

    enh = Enhancer.from_pretrained(backend="cpu", gamma_every=4)
    enh.note_backlog(2)
    enh.note_backlog(1)
    assert enh.reuse.k == 16
    enh.note_backlog(0)
    enh.note_backlog(0)
    assert enh.reuse.k == 4
    frames = np.full((6, 32, 48, 3), 90, np.uint8)
    out = enh.enhance_frames(frames)  # a steady picture: the network runs once, the curve on all
    assert out.shape == frames.shape and enh.reuse.predicted == 2 and enh.reuse.reused == 4  # 0 and 4 (k)
