"""pipeline.finish: the one rule for committing, aborting or keeping a partial output."""

from __future__ import annotations

from pathlib import Path

import pytest

from psenet_stream import pipeline


class FakeFile:
    """A Committable sink that records what finish did."""

    def __init__(self):
        self.kept = None
        self.did = None

    def write(self, frame, enhanced):
        pass

    def close(self):
        self.did = "commit"
        self.kept = Path("out.mp4")

    def abort(self, keep_partial=False):
        self.did = f"abort keep={keep_partial}"
        self.kept = Path("out.partial.mp4") if keep_partial else None


class Preview:
    def __init__(self, fail=False):
        self.closed, self.fail = False, fail

    def write(self, frame, enhanced):
        pass

    def close(self):
        self.closed = True
        if self.fail:
            raise RuntimeError("window already gone")


def _stats(frames_out=10, interrupted=False):
    return pipeline.Stats(frames_out=frames_out, interrupted=interrupted)


@pytest.mark.parametrize(
    "stats, error, keep, live, did, partial",
    [
        (_stats(), None, False, False, "commit", None),
        (_stats(interrupted=True), None, False, False, "abort keep=False", None),
        (_stats(interrupted=True), None, True, False, "abort keep=True", "out.partial.mp4"),
        (_stats(interrupted=True), None, False, True, "commit", None),  # a live recording ends by Ctrl-C
        (_stats(frames_out=0), None, True, False, "abort keep=False", None),
        (None, RuntimeError("disk"), True, False, "abort keep=False", None),  # a failed file run keeps nothing
        (None, RuntimeError("camera"), False, True, "abort keep=True", "out.partial.mp4"),  # a live recording is kept
    ],
)
def test_finish_commits_aborts_or_keeps(stats, error, keep, live, did, partial):
    f, p = FakeFile(), Preview()
    got = pipeline.finish([f, p], stats, error=error, keep_partial=keep, live=live)
    assert f.did == did and p.closed
    assert (str(got) if got else None) == partial


def test_a_sink_that_fails_to_close_does_not_lose_the_file():
    f = FakeFile()
    pipeline.finish([Preview(fail=True), f], _stats())
    assert f.did == "commit"
