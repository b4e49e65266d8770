"""File, image and raw sinks, and the atomic-output rule they share.

Outputs are written under a temporary name in the destination directory and renamed when
complete, so the final name never holds a partial or corrupt file (the rules, the checks
and the temporary names are psenet_stream/guard.py's):

    clip_enhanced.mp4                      final name, appears only after a complete run
    .psenet-<pid>-<random>.tmp.mp4         while writing (same directory: rename is atomic)
    clip_enhanced.partial.mp4              an interrupted run with --keep-partial (playable)

Every output is opened through ``open_sink`` (specs in io/specs.py): files, folders of
images, raw frames on stdout, and live outputs (``rtsp://`` publish, ``preview:window``,
``preview:http``), whose classes live in io/rtsp_out.py, io/preview.py, io/http_preview.py.
``pipeline.finish`` closes, commits or aborts them after a run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from psenet_stream import guard
from psenet_stream.errors import OutputError
from psenet_stream.io.frames import Frame, Sink, StreamInfo, YuvSink
from psenet_stream.io.raw import RawSink
from psenet_stream.io.specs import PREVIEW_PREFIX, extension, is_image_path, is_live_output, is_preview_spec, is_sequence_pattern

log = logging.getLogger("psenet_stream")
EXISTS_HINT = "pass -y (--overwrite) to replace it, -n to skip it, or choose another name with -o"


def partial_name(final: Path, n: int = 1) -> Path:
    """clip_enhanced.mp4 -> clip_enhanced.partial.mp4, then .partial-2.mp4, ... (same
    extension, so it still plays)."""
    return final.with_name(f"{final.stem}.partial{'' if n == 1 else f'-{n}'}{final.suffix}")


def keep_as_partial(tmp: Path, final: Path) -> Path:
    """Move ``tmp`` to the first free partial name of ``final`` and return it: an earlier
    partial recording is never replaced (a hard link claims the name atomically)."""
    n = 1
    while True:
        dest = partial_name(final, n)
        try:
            os.link(tmp, dest)
        except FileExistsError:
            n += 1
            continue
        except OSError:  # no hard links on this filesystem: check, then rename
            if os.path.lexists(dest):
                n += 1
                continue
            os.replace(tmp, dest)
            guard.unregister(tmp)
            return dest
        guard.discard(tmp)
        return dest


def temp_name(final: Path) -> Path:
    """A registered temporary name next to ``final`` (``guard.temp_path``)."""
    return guard.temp_path(final)


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same file (links, hard links and spellings included)."""
    return guard.Protected([b]).covers(a) if os.path.lexists(b) else False


def check_output_path(output: Path, inputs: list[Path] | None = None, *, overwrite: bool = False) -> None:
    """Refuse to overwrite an input (ever) or an existing output (without --overwrite):
    ``guard.check_output``."""
    guard.check_output(output, inputs or [], overwrite=overwrite, hint=EXISTS_HINT)


class AtomicFileSink:
    """Wraps a sink writing a temporary path; ``close()`` renames it to the final path.

    ``write`` passes (H, W, 3) uint8 RGB (or yuv420p, when the wrapped sink ``accepts_yuv``)
    to the wrapped sink. A ``Committable``: ``pipeline.finish`` commits or aborts it.

    ``abort(keep_partial)`` finalizes what was written (a playable file) and renames it to
    the ``.partial`` name when keep_partial, or deletes it.
    """

    def __init__(self, final: Path, make_sink, *, overwrite: bool = False, inputs: list[Path] | None = None):
        self.final = Path(final)
        self.tmp = temp_name(self.final)
        self.overwrite = overwrite
        self.inputs = guard.Protected(inputs or [])
        try:
            self.sink = make_sink(self.tmp)
        except BaseException:
            guard.discard(self.tmp)
            raise
        self.kept: Path | None = None
        self._done = False

    @property
    def accepts_yuv(self) -> bool:
        return isinstance(self.sink, YuvSink) and bool(self.sink.accepts_yuv)

    @property
    def accepts_high_bit_depth(self) -> bool:
        return bool(getattr(self.sink, "accepts_high_bit_depth", False))

    def write(self, frame: Frame, enhanced: np.ndarray) -> None:
        self.sink.write(frame, enhanced)

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.sink.close()
        except BaseException:
            guard.discard(self.tmp)
            raise
        if not self.tmp.exists():  # nothing was written (no frames)
            guard.discard(self.tmp)
            return
        guard.commit(self.tmp, self.final, overwrite=self.overwrite, inputs=self.inputs)
        self.kept = self.final

    def abort(self, keep_partial: bool = False) -> None:
        if self._done:
            return
        self._done = True
        # finalize what was written (flush the encoder, write the trailer): playable if kept
        finish = getattr(self.sink, "finish", None)
        try:
            if finish is not None:
                finish(audio=False)  # audio only up to the last video frame
            else:
                self.sink.close()
        except Exception:  # an output being thrown away may fail to finalize in any way; only a kept one must not
            if keep_partial:
                guard.discard(self.tmp)
                raise
            log.debug("finalizing the aborted output failed", exc_info=True)
        finally:
            if keep_partial and self.tmp.exists():
                self.kept = keep_as_partial(self.tmp, self.final)
            guard.discard(self.tmp)


class ImageSink:
    """Write each frame as an image: to ``path`` (one image) or ``root/<frame.name>`` (folders).

    ``write`` takes (H, W, 3) uint8 RGB in [0, 255] (uint16 for 16-bit images); any size per
    frame. What the input image carried (``Frame.image``: EXIF with the orientation reset,
    ICC, XMP, alpha, grey, animation) is written back by io/images.encode; ``jpeg_quality``
    (``--quality``) sets JPEG / WebP quality (default 95).

    The format follows the file extension (the input's, by default); each file is written
    to a temporary name and renamed, and existing files are refused without overwrite.
    """

    def __init__(self, path: str | Path, *, folder: bool, overwrite: bool = False, jpeg_quality: int | None = None, inputs: list[Path] | None = None):
        self.path = Path(path)
        self._anim: list[np.ndarray] = []  # the enhanced frames of an animation being collected
        self.folder = folder
        self.overwrite = overwrite
        self.jpeg_quality = jpeg_quality
        self.written: list[Path] = []
        self.inputs = [Path(i) for i in inputs or []]
        self._input_files: guard.Protected | None = None

    def _protected(self) -> guard.Protected:
        """The images being read, by identity (through any link, hard link or ancestor)."""
        if self._input_files is None:
            self._input_files = guard.Protected(self.inputs, exclude=self.path if self.folder else None)
        return self._input_files

    def target(self, frame: Frame) -> Path:
        if self.folder:
            return self.path / (frame.name or f"{frame.index:06d}.png")
        if is_sequence_pattern(self.path):  # out_%04d.png: numbered from 1, as ffmpeg's image2 muxer
            return self.path.with_name(self.path.name % (frame.index + 1))
        return self.path

    accepts_high_bit_depth = True  # 16-bit PNG / TIFF are written 16-bit (io/images.py)

    def write(self, frame: Frame, enhanced: np.ndarray) -> None:
        from psenet_stream.io.images import encode

        dest = self.target(frame)
        meta = frame.image[0] if frame.image is not None else None
        if meta is not None and meta.animated:  # every frame of an animation, then one file
            self._anim.append(enhanced)
            if len(self._anim) < meta.frames:
                return
            frames, self._anim = self._anim, []
        else:
            frames = [enhanced]
        guard.check_output(dest, self._protected(), overwrite=self.overwrite, create_parent=True, hint=EXISTS_HINT)
        ext = dest.suffix.lower() or ".png"
        try:  # encoded in memory and written by Python: any file name works
            buf = encode(ext, frames, meta, quality=self.jpeg_quality, name=dest.name)
        except (ValueError, OSError) as e:  # the encoder refused (a format it cannot write)
            raise OutputError(
                f"cannot write image {dest}: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}",
                "choose a jpg/png/bmp/tiff/webp output name (gif/webp for animations)",
            ) from None
        guard.write_bytes(dest, buf, self._protected(), overwrite=self.overwrite)
        self.written.append(dest)

    def close(self) -> None:
        pass


class LockSize:
    """Wraps a sink that needs one frame size (a file encoder): frames whose size changed
    mid-stream (a camera reconnecting at another resolution) are resized to the first size
    instead of failing the recording. Other attributes pass through to the wrapped sink."""

    def __init__(self, sink):
        self.sink = sink
        self.size: tuple[int, int] | None = None  # (h, w)
        self.resized = 0

    def write(self, frame: Frame, enhanced) -> None:
        h, w = enhanced.shape[:2]
        if self.size is None:
            self.size = (h, w)
        elif (h, w) != self.size:
            import cv2

            enhanced = cv2.resize(enhanced, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
            if self.resized == 0:
                log.warning("frame size changed to %dx%d; recording keeps %dx%d (frames are scaled)", w, h, self.size[1], self.size[0])
            self.resized += 1
        self.sink.write(frame, enhanced)

    def close(self) -> None:
        self.sink.close()

    def __getattr__(self, name):
        return getattr(self.sink, name)


def open_live_sink(spec: str, info: StreamInfo, **opts):
    """``rtsp://``/``rtmp://`` publish (io/rtsp_out.py), imported lazily."""
    from psenet_stream.io.rtsp_out import RtspSink

    return RtspSink(spec, info, **opts)


def open_preview_sink(kind: str, info: StreamInfo | None, **opts):
    """``window`` or ``http`` (io/preview.py, io/http_preview.py), imported lazily."""
    if kind == "window":
        from psenet_stream.io.preview import WindowSink

        return WindowSink(info, **opts)
    if kind == "http":
        from psenet_stream.io.http_preview import HttpPreviewSink

        return HttpPreviewSink(info, **opts)
    raise OutputError(f"unknown preview {kind!r}", "use --preview window or --preview http")


#: The encoder and trimming options open_sink hands a video file sink (io/video.VideoFileSink).
VIDEO_SINK_OPTIONS = ("codec", "crf", "preset", "pix_fmt", "bitrate", "maxrate", "encoder_opts", "audio_shift_s", "cut_audio", "maps", "hdr", "feed")


def open_sink(
    spec: str | Path,
    info: StreamInfo | None,
    *,
    inputs: list[Path] | tuple[Path, ...] = (),
    audio_from: str | Path | None = None,
    overwrite: bool = False,
    live: bool = False,
    **opts: Any,
) -> Sink:
    """Open an output spec as a Sink, the counterpart of ``sources.open_source``.

    "-"                        RawSink on stdout (opts: pix_fmt)
    "rtsp://..." etc.          RtspSink (io/rtsp_out.py; opts go to it)
    "preview:window|http"      WindowSink / HttpPreviewSink (opts go to them: stop, source, ...)
    "out.png" / "out/"         ImageSink (a folder when the spec is a directory or ends in /)
    "out.mp4"                  AtomicFileSink(VideoFileSink): temporary name, then rename
                               (opts: VIDEO_SINK_OPTIONS; the other streams, tags and
                               chapters copied from audio_from, or from the source's
                               ``feed`` for a container on stdin: io/streams.py)

    Files are checked first: never one of ``inputs`` (nor ``audio_from``), never an existing
    file without ``overwrite``. ``live``: the frames come from a live source, whose size may
    change after a reconnect: a video file keeps the first size (``LockSize``).
    """
    s = str(spec)
    if s == "-":
        return RawSink(pix_fmt=opts.get("pix_fmt") or "rgb24")
    if is_preview_spec(s):
        return open_preview_sink(s[len(PREVIEW_PREFIX) :], info, **opts)
    if is_live_output(s):
        return open_live_sink(s, info, **opts)
    p = Path(s)
    if p.is_dir() or s.endswith(os.sep):
        guard.check_output_dir(p, [Path(i) for i in inputs])
        return ImageSink(p, folder=True, overwrite=overwrite, inputs=[Path(i) for i in inputs], jpeg_quality=opts.get("quality"))
    protected = [Path(i) for i in inputs] + ([Path(audio_from)] if audio_from else [])
    check_output_path(p, protected, overwrite=overwrite)
    known = extension(p)
    video_into_image = known is not None and known.codec is not None and info is not None and info.fps is not None  # a video written as .gif
    if is_image_path(p) and not video_into_image:
        return ImageSink(p, folder=False, overwrite=overwrite, inputs=protected, jpeg_quality=opts.get("quality"))
    from psenet_stream.io.video import VideoFileSink, check_video_output

    check_video_output(p)
    kw = {k: opts[k] for k in VIDEO_SINK_OPTIONS if opts.get(k) is not None}

    def make(tmp: Path):
        vfs = VideoFileSink(tmp, info, audio_from=audio_from, name=p.name, **kw)
        return LockSize(vfs) if live else vfs

    return AtomicFileSink(p, make, overwrite=overwrite, inputs=protected)
