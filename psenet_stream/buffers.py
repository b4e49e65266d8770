"""The queues between threads: the only queue code in psenet-stream.

- ``DropOldestQueue``: bounded, ``put`` never blocks; when full the *oldest* item is
  discarded and counted. Live sources use it so latency never grows.
- ``put_until``: a blocking put on a ``queue.Queue`` that gives up when a halt event is set,
  so shutdown never hangs on a full queue. Files use it (lossless back-pressure).

Both kinds raise ``queue.Empty`` from a timed-out ``get`` (``DropOldestQueue`` raises
``QueueTimeout``, which is also a ``TimeoutError``).
"""

from __future__ import annotations

import collections
import queue
import threading
from typing import Any

POLL_SECONDS = 0.1  # how often a blocked put or get looks at its halt event


class QueueTimeout(queue.Empty, TimeoutError):
    """Nothing arrived within the timeout."""


class DropOldestQueue:
    """A bounded FIFO whose ``put`` never blocks: when full, the oldest item is discarded."""

    def __init__(self, maxsize: int = 1):
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self._items: collections.deque = collections.deque()
        self.maxsize = maxsize
        self.dropped = 0  # items discarded to make room, since creation
        self.ended = False  # ``end()`` was called: no more items will come
        self._cond = threading.Condition()

    def put(self, item: Any) -> int:
        """Append item; returns how many old items were dropped to make room."""
        with self._cond:
            n = 0
            while len(self._items) >= self.maxsize:
                self._items.popleft()
                n += 1
            self._items.append(item)
            self.dropped += n
            self._cond.notify()
            return n

    def get(self, timeout: float | None = None) -> Any:
        """The oldest item; raises QueueTimeout when nothing arrives within ``timeout`` seconds,
        EOFError once the queue is empty and ``end()`` was called."""
        with self._cond:
            if not self._items and not self._cond.wait_for(lambda: bool(self._items) or self.ended, timeout):
                raise QueueTimeout
            if self._items:
                return self._items.popleft()
            raise EOFError

    def take_newest(self, timeout: float | None = None) -> Any:
        """Wait up to ``timeout`` s for an item (or the end); return the newest item, dropping
        and counting the older ones, or None when there is none."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items) or self.ended, timeout)
            if not self._items:
                return None
            newest = self._items.pop()
            self.dropped += len(self._items)
            self._items.clear()
            return newest

    def end(self) -> None:
        """No more items will come: a waiting ``get`` on an empty queue raises EOFError."""
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake every waiting ``get`` (it returns or times out as usual)."""
        with self._cond:
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def put_until(q: queue.Queue, item: Any, halt: threading.Event, poll_seconds: float = POLL_SECONDS) -> bool:
    """Put ``item``, blocking while ``q`` is full; give up (False) once ``halt`` is set."""
    while True:
        try:
            q.put(item, timeout=poll_seconds)
            return True
        except queue.Full:
            if halt.is_set():
                return False
