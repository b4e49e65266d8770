"""The preview window: original | enhanced side by side, with fps and latency.

Uses pygame (SDL2), not ``cv2.imshow``: in a process that imported PyAV first, imshow hangs
(two bundled FFmpeg/xcb stacks in one process), and without a display it aborts the
interpreter. pygame works next to PyAV and we check for a display before opening anything.

Keys:
    space    cycle the view: side by side -> enhanced -> original -> side by side
    s        save a snapshot (PNG, full resolution, written atomically) to the snapshots dir
    q / Esc  quit (closing the window does the same): the pipeline is asked to stop

Frames are shown rotated for display (``frame.rotation``, phone clips) and downscaled to
fit ``max_size``. All pygame calls happen in the thread that calls ``write()`` (the
pipeline's writer thread); ``close()`` from another thread only flags the window to close.

Test hook: ``PSENET_PREVIEW_KEYS="20:s,30:space,45:q"`` posts those key presses into the
window's own event queue after the given number of displayed frames, so tests drive the
real key handling under Xvfb.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from psenet_stream.errors import OutputError
from psenet_stream.io.frames import Frame, StreamInfo

log = logging.getLogger("psenet_stream.preview")

MODES = ("side-by-side", "enhanced", "original")


def rotate_for_display(img: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate by ``rotation`` degrees counter-clockwise (multiples of 90)."""
    k = (int(rotation) // 90) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


def fit_size(w: int, h: int, max_w: int, max_h: int) -> tuple[int, int]:
    s = min(1.0, max_w / w, max_h / h)
    return max(1, int(w * s)), max(1, int(h * s))


def compose(original: np.ndarray, enhanced: np.ndarray, mode: str, rotation: int = 0, max_size: tuple[int, int] | None = None) -> np.ndarray:
    """The image a viewer sees: (H, W, 3) uint8 RGB, rotated and scaled to fit max_size."""
    import cv2

    o = rotate_for_display(original, rotation)
    e = rotate_for_display(enhanced, rotation)
    if mode == "original":
        img = o
    elif mode == "enhanced":
        img = e
    else:
        if o.shape != e.shape:
            o = cv2.resize(o, (e.shape[1], e.shape[0]), interpolation=cv2.INTER_AREA)
        img = np.concatenate([o, e], axis=1)
    if max_size is not None:
        w, h = fit_size(img.shape[1], img.shape[0], *max_size)
        if (w, h) != (img.shape[1], img.shape[0]):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def write_png_atomic(path: Path, rgb: np.ndarray) -> Path:
    """Write rgb as PNG at path via a temporary name + rename (never a half-written file)."""
    import cv2

    from psenet_stream import guard

    path = Path(path)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise OutputError(f"cannot encode snapshot {path}", "this is a bug in psenet-stream")
    return guard.write_bytes(path, buf.tobytes(), overwrite=False, create_parent=True, what="snapshot")


def has_display() -> bool:
    if os.environ.get("SDL_VIDEODRIVER", "").lower() in ("dummy", "offscreen"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class RateMeter:
    """Frames per second over a sliding window of timestamps."""

    def __init__(self, window: int = 30):
        self.t: list[float] = []
        self.window = window

    def tick(self, now: float) -> float:
        self.t.append(now)
        if len(self.t) > self.window:
            del self.t[0]
        if len(self.t) < 2:
            return 0.0
        return (len(self.t) - 1) / max(1e-9, self.t[-1] - self.t[0])


def request_stop(stop: threading.Event | None, on_quit: Callable[[], None] | None) -> None:
    """Ask the pipeline to stop: the given Event/callback, else SIGINT to ourselves
    (the CLI's handler turns the first SIGINT into a clean stop)."""
    if on_quit is not None:
        on_quit()
    if stop is not None:
        stop.set()
    if stop is None and on_quit is None:
        os.kill(os.getpid(), signal.SIGINT)


def _parse_key_script(s: str) -> list[tuple[int, str]]:
    out = []
    for part in s.split(","):
        if ":" in part:
            n, key = part.split(":", 1)
            out.append((int(n), key.strip()))
    return sorted(out)


class WindowSink:
    """A Sink showing original | enhanced in a pygame window (see module docstring).

    ``write(frame, enhanced)``: ``frame.rgb`` and ``enhanced`` (H, W, 3) uint8 RGB; the window
    is scaled to fit ``max_size``. ``q`` / Esc / closing the window sets ``stop``."""

    def __init__(
        self,
        info: StreamInfo | None = None,
        *,
        title: str = "psenet-stream",
        max_size: tuple[int, int] = (1600, 900),
        snapshot_dir: str | Path = "snapshots",
        mode: str = "side-by-side",
        stop: threading.Event | None = None,
        on_quit: Callable[[], None] | None = None,
        source: Any = None,
        **_ignored: Any,
    ):
        if mode not in MODES:
            raise OutputError(f"Invalid preview mode ({mode!r}). Supported values are {', '.join(MODES)}.", "")
        if not has_display():
            raise OutputError(
                "no display for the preview window (DISPLAY and WAYLAND_DISPLAY are not set)",
                "use --preview http and open the printed URL in a browser (works over SSH too)",
            )
        try:
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            import pygame  # noqa: F401
        except ImportError:
            raise OutputError("the preview window needs pygame", "pip install 'psenet-stream[gui]', or use --preview http") from None
        self.title = title
        self.max_size = tuple(int(v) for v in max_size)
        self.snapshot_dir = Path(snapshot_dir)
        self.mode = mode
        self.stop_event = stop
        self.on_quit = on_quit
        self.source = source
        self.quit_requested = False
        self.frames_shown = 0
        self.snapshots: list[Path] = []
        self._screen = None
        self._font = None
        self._size: tuple[int, int] | None = None
        self._rate = RateMeter()
        self._closed = False
        self._close_flag = False
        self._last: tuple[Frame, np.ndarray] | None = None
        self._script = _parse_key_script(os.environ.get("PSENET_PREVIEW_KEYS", ""))
        self._thread: threading.Thread | None = None

    # --- Sink ---------------------------------------------------------------------------------
    def write(self, frame: Frame, enhanced: np.ndarray) -> None:
        if self._closed or self.quit_requested:
            return
        if self._close_flag:
            self._shutdown()
            return
        if self._screen is None:
            self._open()
        self._last = (frame, enhanced)
        now = time.perf_counter()
        fps = self._rate.tick(now)
        latency_ms = (now - frame.t_capture) * 1000.0
        self._draw(frame, enhanced, fps, latency_ms)
        self.frames_shown += 1
        self._run_script()
        self._handle_events()

    def close(self) -> None:
        if self._closed:
            return
        if self._thread is None or self._thread is threading.current_thread():
            self._shutdown()
        else:
            self._close_flag = True  # the writer thread owns the window; it closes on its next call
            self._closed = True
            with contextlib.suppress(Exception):  # best effort from another thread
                import pygame

                if pygame.display.get_init():
                    pygame.display.quit()

    def __enter__(self) -> WindowSink:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------------
    def _open(self) -> None:
        import pygame

        self._thread = threading.current_thread()
        try:
            pygame.display.init()
            pygame.font.init()
        except pygame.error as e:
            raise OutputError(f"cannot open the preview window: {e}", "check DISPLAY, or use --preview http") from None
        pygame.display.set_caption(self.title)
        try:
            self._font = pygame.font.Font(None, 22)
        except Exception:  # noqa: BLE001 - no usable font (SDL_ttf missing or broken): the window shows no text
            self._font = None
        self._screen = True  # set_mode happens in _draw (size depends on the mode)

    def _draw(self, frame: Frame, enhanced: np.ndarray, fps: float, latency_ms: float) -> None:
        import pygame

        img = compose(frame.rgb, enhanced, self.mode, frame.rotation, self.max_size)
        h, w = img.shape[:2]
        if self._size != (w, h):
            try:
                self._screen = pygame.display.set_mode((w, h))
            except pygame.error as e:
                raise OutputError(f"cannot open the preview window: {e}", "check DISPLAY, or use --preview http") from None
            self._size = (w, h)
        surf = pygame.image.frombuffer(img.tobytes(), (w, h), "RGB")
        self._screen.blit(surf, (0, 0))
        if self._font is not None:
            if self.mode == "side-by-side":
                self._label("original", (8, h - 26))
                self._label("enhanced", (w // 2 + 8, h - 26))
            else:
                self._label(self.mode, (8, h - 26))
            text = f"{fps:4.1f} fps   latency {latency_ms:4.0f} ms"
            dropped = getattr(self.source, "dropped", None)
            if dropped:
                text += f"   dropped {dropped}"
            text += "   [space] view  [s] snapshot  [q] quit"
            self._label(text, (8, 6))
        pygame.display.flip()

    def _label(self, text: str, pos: tuple[int, int]) -> None:
        import pygame

        t = self._font.render(text, True, (255, 255, 255))
        bg = pygame.Surface((t.get_width() + 8, t.get_height() + 4))
        bg.set_alpha(150)
        bg.fill((0, 0, 0))
        self._screen.blit(bg, (pos[0] - 4, pos[1] - 2))
        self._screen.blit(t, pos)

    def _run_script(self) -> None:
        import pygame

        keys = {"s": pygame.K_s, "q": pygame.K_q, "space": pygame.K_SPACE, "esc": pygame.K_ESCAPE}
        while self._script and self._script[0][0] <= self.frames_shown:
            _, k = self._script.pop(0)
            if k in keys:
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=keys[k], mod=0, unicode="", scancode=0))

    def _handle_events(self) -> None:
        import pygame

        for ev in pygame.event.get():
            if ev.type == pygame.QUIT:
                self._quit()
            elif ev.type == pygame.KEYDOWN:
                if ev.key in (pygame.K_q, pygame.K_ESCAPE):
                    self._quit()
                elif ev.key == pygame.K_SPACE:
                    self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
                    log.info("preview: %s", self.mode)
                elif ev.key == pygame.K_s:
                    self.snapshot()
            if self.quit_requested:
                break

    def snapshot(self) -> Path | None:
        """Save what is shown (current view, full resolution, rotated) as a PNG."""
        if self._last is None:
            return None
        frame, enhanced = self._last
        img = compose(frame.rgb, enhanced, self.mode, frame.rotation, None)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.snapshot_dir / f"psenet-{stamp}-{frame.index:06d}-{self.mode}.png"
        try:
            write_png_atomic(path, img)
        except OutputError as e:  # a snapshot that cannot be saved must not end the preview
            log.warning("snapshot not saved: %s", e)
            return None
        self.snapshots.append(path)
        log.warning("snapshot saved: %s", path)
        return path

    def _quit(self) -> None:
        if self.quit_requested:
            return
        self.quit_requested = True
        log.info("preview closed: stopping")
        self._shutdown()
        request_stop(self.stop_event, self.on_quit)

    def _shutdown(self) -> None:
        self._closed = True
        if self._screen is None:
            return
        self._screen = None
        with contextlib.suppress(Exception):
            import pygame

            pygame.display.quit()
            pygame.font.quit()
