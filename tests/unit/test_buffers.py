"""buffers: the drop-oldest queue's end and newest-only drain, and put_until giving up on halt."""

from __future__ import annotations

import queue
import threading

import pytest

from psenet_stream.buffers import DropOldestQueue, QueueTimeout, put_until


def test_get_times_out_then_ends():
    q = DropOldestQueue(2)
    with pytest.raises(QueueTimeout):
        q.get(timeout=0.01)
    with pytest.raises(queue.Empty):  # the same exception a queue.Queue raises
        q.get(timeout=0)
    q.put(1)
    q.end()
    assert q.get(timeout=0) == 1  # what is queued still comes out after the end
    with pytest.raises(EOFError):
        q.get(timeout=1)


def test_take_newest_drops_and_counts_the_rest():
    q = DropOldestQueue(3)
    for i in range(5):
        q.put(i)
    assert q.dropped == 2
    assert q.take_newest(timeout=0) == 4
    assert q.dropped == 4 and len(q) == 0
    assert q.take_newest(timeout=0.01) is None


def test_put_until_gives_up_when_halted():
    q: queue.Queue = queue.Queue(maxsize=1)
    halt = threading.Event()
    assert put_until(q, "a", halt)
    halt.set()
    assert not put_until(q, "b", halt, poll_seconds=0.01)
