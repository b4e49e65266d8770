"""Video files through PyAV: a source that decodes, a sink that encodes and copies audio.

The source yields ``Frame`` objects carrying the decoder's ``pts`` and ``time_base``; the
sink re-uses them unchanged, so the output has the input's timestamps (VFR passes
through). Audio is not touched by the pipeline at all: the sink demuxes the *input* a
second time, audio streams only, and remuxes those packets byte for byte next to the
video (``add_stream_from_template``), falling back to an AAC re-encode only when the
output container refuses the codec. A container on stdin cannot be read twice: there the
source demuxes every selected stream in its one pass and hands the others' packets to the
sink through a ``streams.PacketFeed``. Rotation (display matrix) and the colour tags
(range, matrix, primaries, transfer) are copied from the first decoded frame.

Every ``av.open`` here has a timeout, so a stalled read (network file system, FIFO)
ends with an error instead of hanging.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import logging
import os
import stat
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from psenet_stream.colour import rgb_to_yuv420p_np
from psenet_stream.errors import InputError, OutputError
from psenet_stream.io.frames import Frame, StreamInfo
from psenet_stream.io.hdr import encoder_params as hdr_encoder_params
from psenet_stream.io.hdr import read_side_data
from psenet_stream.io.specs import extension, is_sequence_pattern
from psenet_stream.io.streams import (
    Continuity,
    PacketFeed,
    StreamCopier,
    copy_container_tags,
    copy_stream_tags,
    has_discontinuities,
    select_streams,
)

log = logging.getLogger("psenet_stream")

OPEN_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 15.0
AUDIO_LEAD_S = 1.0  # audio is muxed up to this far ahead of the last video frame written
REORDER_WINDOW = 4  # frames held back to repair permuted timestamps (see VideoFileSource._decode)

# Default codec per output container; libx264 unless the container cannot hold H.264.
DEFAULT_CODEC = "libx264"  # containers that need another one say so in specs.EXTENSIONS
WRITE_HINT = "check the free space (and file size limits) of the output's disk, or write elsewhere with -o"
DEFAULT_CRF = 18
DEFAULT_PRESET = "veryfast"


def _err_text(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def _color_tags(fr) -> dict:
    return {
        "color_range": int(fr.color_range),
        "colorspace": int(fr.colorspace),
        "color_primaries": int(fr.color_primaries),
        "color_trc": int(fr.color_trc),
    }


def _wait_for_fifo_writer(path: Path, timeout: float) -> int | None:
    """For a named pipe: wait up to ``timeout`` s for data, else InputError; returns a read fd to
    hold open until PyAV has opened the pipe (so the writer never sees it reader-less).
    None for anything else. PyAV's timeouts cannot interrupt a blocking open(2) of a FIFO."""
    import select
    import stat

    try:
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            return None
    except OSError:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    if not poller.poll(int(timeout * 1000)):
        os.close(fd)
        raise InputError(f"nothing is writing to the named pipe {path.name} (waited {timeout:g} s)", "start the program that writes into it first, or pass a file")
    return fd


def pix_fmt_bits(name: str | None) -> int:
    """Bits per component of a pixel format (8 when unknown)."""
    if not name:
        return 8
    try:
        return max(c.bits for c in av.VideoFormat(name).components)
    except (ValueError, av.FFmpegError):
        return 8


def decode_picture(fr, rng, high_bit_depth: bool) -> np.ndarray:
    """(H, W, 3) RGB of a decoded frame in its own matrix: uint8, or uint16 (0..65535, from
    rgb48) for high-bit-depth video, so 10-bit levels are not rounded to 8 bits."""
    kw = {"src_color_range": rng}
    if int(fr.colorspace or 2) in (9, 10):  # BT.2020 (HDR and 10-bit phone video): swscale's default is BT.601
        kw["src_colorspace"] = 9
    if high_bit_depth:
        return fr.to_ndarray(format="rgb48le", **kw)
    return fr.to_ndarray(format="rgb24", **kw)


def check_input_file(path: str | Path) -> Path:
    """Existence / type / size checks with one-line fixes, before PyAV sees the path."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input not found: {p}", "check the path (or pass '-' to read raw frames from stdin)")
    if p.is_dir():
        raise InputError(f"input is a directory: {p}", "pass a video file, an image, or a folder that contains images")
    if not os.access(p, os.R_OK):
        raise InputError(f"input is not readable: {p}", "check the file's permissions")
    mode = os.stat(p).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):  # a device or socket could block the decoder forever
        raise InputError(f"input is not a regular file (a device or socket): {p}", "pass a video file, or a capture device as /dev/videoN")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"input is an empty file (0 bytes): {p}", "the file was not written completely; copy or record it again")
    return p


def is_stdin_container(spec: str | Path) -> bool:
    """``pipe:`` / ``pipe:0``: a container (mp4, mkv, ts, ...) read from stdin. (``-`` is
    decided by the command: raw frames with --size, a container without.)"""
    return str(spec) in ("pipe:", "pipe:0")


def sequence_files(pattern: str | Path) -> list[tuple[int, Path]]:
    """(number, file) of each existing file of an image sequence pattern, in number order."""
    import re

    p = Path(pattern)
    m = re.search(r"%0?(\d*)d", p.name)
    rx = re.compile(re.escape(p.name[: m.start()]) + r"(\d+)" + re.escape(p.name[m.end() :]) + "$")
    folder = p.parent
    found = [(int(mm.group(1)), f) for f in (folder.iterdir() if folder.is_dir() else []) if (mm := rx.match(f.name))]
    return sorted(found)


def check_sequence(pattern: str | Path) -> Path:
    """An input image sequence must have at least one file."""
    files = sequence_files(pattern)
    if not files:
        raise InputError(f"no file matches the image sequence {pattern}", "check the pattern, e.g. frame_%04d.png for frame_0001.png, frame_0002.png, ...")
    return Path(pattern)


def _open_input(path: Path, *, stdin: bool, timeout, sequence_fps: float | None):
    """av.open for a file, a container on stdin, or an image sequence (at ``sequence_fps``, default 25 as ffmpeg)."""
    if stdin:
        return av.open("pipe:0", timeout=timeout)
    if is_sequence_pattern(path):
        number = sequence_files(path)[0][0]
        rate = Fraction(sequence_fps or 25).limit_denominator(1001)
        return av.open(str(path), format="image2", options={"framerate": f"{rate.numerator}/{rate.denominator}", "start_number": str(number)}, timeout=timeout)
    return av.open(str(path), timeout=timeout)


def _trimmed_count(frames: int | None, fps, start: float, duration: float | None, limit: int | None) -> int | None:
    """The frame count left after -ss / -t / --frames (for the progress line)."""
    if frames and fps and start:
        frames = max(0, frames - round(start * float(fps)))
    if duration is not None and fps:
        n = round(duration * float(fps))
        frames = min(frames, n) if frames else n
    if limit is not None:
        frames = min(frames, limit) if frames else limit
    return frames


class VideoFileSource:
    """Decode the first video stream of a file; yields ``Frame``s with pts and time_base.

    ``Frame.rgb`` is (H, W, 3) uint8 RGB in [0, 255] in coded orientation (``rotation`` says
    how to display it); after ``set_frame_format("yuv420p")``, 8-bit 4:2:0 frames with even
    sides come as ``Frame.yuv`` (H * 3 / 2, W) uint8 instead, with their colour tags.

    ``copy_streams``: for a container on stdin, which can be read only once, the other
    selected streams (audio, subtitles, ...) are demuxed in the same pass as the video and
    handed to the file sink through ``self.feed`` (a ``streams.PacketFeed``); a file input
    needs nothing (its sink reads the file again for them).

    The first frame is decoded when the source opens, so a file that cannot be decoded
    (truncated, not a video, no video stream) fails here with an ``InputError`` before
    any output is created.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        thread_type: str = "AUTO",
        timeout_s: float = READ_TIMEOUT_S,
        start: float = 0.0,
        duration: float | None = None,
        max_frames: int | None = None,
        sequence_fps: float | None = None,
        maps: tuple[str, ...] | list[str] | None = None,
        high_bit_depth: bool = True,
        copy_streams: bool = False,
    ):
        stdin = is_stdin_container(path)
        self.path = Path("pipe:0") if stdin else (check_sequence(path) if is_sequence_pattern(path) else check_input_file(path))
        self.stdin = stdin
        self.dropped = 0
        self.decode_errors = 0
        self.trim = (float(start or 0.0), duration, max_frames)
        hold = None if stdin else _wait_for_fifo_writer(self.path, OPEN_TIMEOUT_S)  # a named pipe: open(2) would block forever
        try:
            self._c = _open_input(self.path, stdin=stdin, timeout=(OPEN_TIMEOUT_S, timeout_s), sequence_fps=sequence_fps)
        except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise InputError(
                f"cannot read {self.path.name}: {_err_text(e)}",
                "the file is damaged, truncated, or not a video; check it plays, or re-download / re-export it",
            ) from None
        finally:
            if hold is not None:
                os.close(hold)
        try:
            main, others = select_streams(self._c, maps)  # the main video, never a cover picture
        except Exception:
            self._c.close()
            raise
        if main is None:
            kinds = ", ".join(sorted({s.type for s in self._c.streams})) or "nothing"
            self._c.close()
            raise InputError(f"{self.path.name} has no video stream (it contains {kinds})", "pass a file with a video track")
        self.stream = vs = main
        cc0 = vs.codec_context
        # 10/12-bit video stays high bit depth: frames come as uint16 RGB (see decode_picture)
        self._allow_high = high_bit_depth  # False: 8-bit RGB whatever the input (metrics, previews)
        self.high_bit_depth = bool(high_bit_depth and cc0 is not None and pix_fmt_bits(cc0.pix_fmt) > 8)
        self.others = others  # the streams a file sink copies (io/streams.py)
        # a container on stdin is read once: its other streams' packets are demuxed with the
        # video and handed to the file sink through this feed (VideoFileSink(feed=...))
        # (``copy_streams``: the caller writes a video file that keeps them)
        self.feed = PacketFeed(self._c, main, others) if stdin and copy_streams and others else None
        self._cont = Continuity(has_discontinuities(self._c))
        vs.thread_type = thread_type
        if start and start > 2.0 and not stdin and vs.time_base:  # seek to the key frame before; _trimmed drops the rest
            origin = vs.start_time or 0
            try:
                self._c.seek(origin + int((start - 1.0) / vs.time_base), stream=vs, backward=True)
            except av.FFmpegError:  # an unseekable file: decode from the start instead
                log.debug("seek failed; decoding from the start", exc_info=True)
        self._yuv = False  # set_frame_format("yuv420p"): decoded frames stay yuv420p
        self._color: dict = {}  # the first decoded frame's colour tags and HDR side data (_decode_raw)
        self._hdr_meta: dict = {}
        self._frames = self._decode()
        self.trim_shift_s = 0.0  # seconds taken off every timestamp (-ss); the sink shifts the audio alike
        if start or duration is not None or max_frames is not None:
            self._frames = self._trimmed(self._frames)
        try:
            first = next(self._frames)
        except InputError:
            self._c.close()
            raise
        except StopIteration:
            length = self._c.duration / 1e6 if self._c.duration else None
            self._c.close()
            if start and (length is None or start >= length - 0.05):
                raise InputError(
                    f"-ss {start:g} is past the end of {self.path.name}" + (f" ({length:.2f} s long)" if length else ""), "start earlier"
                ) from None
            raise InputError(
                f"no decodable video frames in {self.path.name}", "the file is damaged or truncated; check it plays, or re-export it"
            ) from None
        self._first: Frame | None = first
        cc = vs.codec_context
        fps = vs.average_rate or vs.guessed_rate or vs.base_rate
        frames = vs.frames or None
        if not frames and fps and (vs.duration or self._c.duration):
            dur = float(vs.duration * vs.time_base) if vs.duration else self._c.duration / 1e6
            frames = max(1, round(dur * float(fps)))
        frames = _trimmed_count(frames, fps, start, duration, max_frames)
        self.info = StreamInfo(
            width=first.hw[1],
            height=first.hw[0],
            fps=Fraction(fps) if fps else None,
            time_base=Fraction(vs.time_base) if vs.time_base else None,
            frames=frames,
            live=False,
            rotation=first.rotation,
            codec=cc.name,
            pix_fmt=cc.pix_fmt,
            color=self._color,
            hdr=self._hdr_meta,
            description=self.path.name,
        )
        self.has_audio = bool(self._c.streams.audio)
        trc = (self._color or {}).get("color_trc")
        self.hdr_transfer = trc if trc in (16, 18) and self.high_bit_depth else None  # smpte2084 (PQ) / arib-std-b67 (HLG): psenet_stream/hdr.py
        if self.hdr_transfer:
            log.info("note: %s is HDR (%s, %s): the correction is estimated on an SDR rendition and applied in light, "
                     "highlights above reference white kept", self.path.name, "PQ" if trc == 16 else "HLG", cc.pix_fmt)
        elif self.high_bit_depth:
            log.info("note: %s is %s: processed and written at high bit depth", self.path.name, cc.pix_fmt)

    def describe_streams(self) -> list[str]:
        """One line per stream of the file, ffmpeg's numbering (for -v and --map)."""
        from psenet_stream.io.streams import describe, is_cover

        lines = []
        for st in self._c.streams:
            role = "enhanced" if st.index == self.stream.index else ("copied" if st in self.others else "not selected")
            lines.append(f"  stream {describe(st)}{' cover picture' if is_cover(st) else ''}: {role}")
        return lines

    def _decode(self) -> Iterator[Frame]:
        """Decoded frames in display order, with strictly increasing pts.

        Some containers (AVI with packed B-frames) hand the decoder timestamps that come out
        permuted (1, 2, 3, 5, 4, 6, 8, 7); an encoder refuses those. A small window re-assigns
        the window's smallest pts to its oldest frame: a no-op on well-formed files (the
        oldest frame already has the smallest pts), and the right order on broken ones.
        """
        pending: collections.deque[Frame] = collections.deque()
        heap: list[int] = []
        last = [None]
        self.retimed = 0

        def emit() -> Frame:
            f = pending.popleft()
            p = heapq.heappop(heap)
            if last[0] is not None and p <= last[0]:
                p = last[0] + 1
            if p != f.pts:
                self.retimed += 1
            f.pts = last[0] = p
            return f

        for f in self._decode_raw():
            if f.pts is None:
                f.pts = (max(heap) if heap else (last[0] if last[0] is not None else -1)) + self._tick()
            heapq.heappush(heap, f.pts)
            pending.append(f)
            if len(pending) > REORDER_WINDOW:
                yield emit()
        while pending:
            yield emit()
        if self.retimed:
            log.info("note: %d frame timestamp(s) of %s were out of order and were re-ordered", self.retimed, self.path.name)

    def _tick(self) -> int:
        """One frame duration in time_base units (for frames without pts)."""
        vs = self.stream
        rate = vs.average_rate or vs.guessed_rate
        if rate and vs.time_base:
            return max(1, round(1 / (float(rate) * float(vs.time_base))))
        return 1

    def _decode_raw(self) -> Iterator[Frame]:
        vs = self.stream
        index = 0
        last_s = None
        try:
            # demux() also yields the demuxer's final flush packets (dts None): they must be
            # decoded, or the last frames held by frame threading are lost.
            feed = self.feed
            for packet in feed.demux() if feed is not None else self._c.demux(vs):
                if feed is not None and packet.stream.index != vs.index:
                    feed.put(packet)  # stdin: the other streams, for the sink (one pass over the input)
                    continue
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    self.decode_errors += 1  # one corrupt packet: skip it, as players do
                    continue
                for fr in decoded:
                    if not self._color:
                        self._color = _color_tags(fr)
                        self._hdr_meta = read_side_data(fr)
                        if self._color.get("color_trc") in (16, 18) and self._allow_high:
                            self.high_bit_depth = True  # HDR: always 16-bit RGB (psenet_stream/hdr.py converts it)
                    rng = fr.color_range if fr.color_range == 2 else None  # JPEG (full) range; else limited
                    tb = fr.time_base or vs.time_base
                    if fr.pts is not None and tb and self._cont.enabled:  # MPEG-TS: a timestamp reset continues the clip
                        fixed = self._cont.fix(float(fr.pts * tb), self._tick() * float(tb))
                        fr.pts = round(Fraction(fixed) / Fraction(tb))
                    if fr.pts is not None and tb:
                        last_s = float(fr.pts * tb)
                    # (yuvj420p, 10-bit, odd sizes: the RGB path, whose conversions handle them)
                    if self._yuv and fr.format.name == "yuv420p" and fr.width % 2 == 0 and fr.height % 2 == 0:
                        yield Frame(
                            rgb=None, yuv=fr.to_ndarray(), colorspace=int(fr.colorspace or 2), full_range=fr.color_range == 2,
                            index=index, pts=fr.pts, time_base=tb, rotation=int(fr.rotation or 0),
                        )
                    else:
                        rgb = decode_picture(fr, rng, self.high_bit_depth)
                        yield Frame(rgb=rgb, index=index, pts=fr.pts, time_base=tb, rotation=int(fr.rotation or 0))
                    index += 1
        except (av.FFmpegError, OSError) as e:
            if index == 0:
                if self.stdin and "mov" in (self._c.format.name or ""):  # its index (moov) at the end: unreachable on a pipe
                    raise InputError(
                        f"cannot decode the MP4/MOV on stdin: {_err_text(e)}",
                        "an MP4 read from a pipe needs its index first: pass the file name instead of '-', "
                        "or remux it with `ffmpeg -i in.mp4 -c copy -movflags +faststart fast.mp4` (or pipe MPEG-TS / mkv)",
                    ) from None
                raise InputError(f"cannot decode {self.path.name}: {_err_text(e)}", "the file is damaged or truncated") from None
            log.warning("warning: %s ended early after %d frames (%s); the output stops there", self.path.name, index, _err_text(e))
        else:
            # the container's header promised a longer stream: cut off. (Frame counts are no
            # guide: AVI marks repeated frames with empty packets that decode to nothing.)
            dur_s = None
            if vs.duration and vs.time_base:
                dur_s = float(vs.duration * vs.time_base) + float(vs.start_time or 0) * float(vs.time_base)
            elif self._c.duration:  # matroska: only the container (segment) has a duration
                dur_s = (self._c.duration + (self._c.start_time or 0)) / 1e6
            if last_s is not None and dur_s:
                if last_s < dur_s - max(0.5, 0.1 * dur_s):
                    log.warning(
                        "warning: %s ended early at %.1f s of %.1f s (truncated?); the output stops there", self.path.name, last_s, dur_s
                    )
        if self.decode_errors:
            log.warning("warning: skipped %d corrupt packet(s) in %s", self.decode_errors, self.path.name)

    def _trimmed(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """-ss / -t / --frames: frames from ``start`` s after the stream's first timestamp, for
        ``duration`` s or ``max_frames`` frames; timestamps move back by ``start`` s (so the
        output starts where the input's stream did) and indexes restart at 0. A long ``start``
        seeks to the key frame before it first."""
        start, duration, limit = self.trim
        vs = self.stream
        tb = vs.time_base
        origin = float(vs.start_time * tb) if vs.start_time is not None and tb else 0.0
        shift = round(Fraction(start).limit_denominator(10**6) / tb) if start and tb else 0
        self.trim_shift_s = float(shift * tb) if tb else 0.0
        if self.feed is not None:  # stdin: the other streams are cut and moved alike on their way to the sink
            self.feed.retimer.shift_s = self.trim_shift_s
        end = start + duration if duration is not None else None
        n = 0
        for f in frames:
            if limit is not None and n >= limit:
                break
            t = float(f.pts * (f.time_base or tb)) - origin if f.pts is not None else None
            if t is not None and t < start - 1e-6:
                continue
            if t is not None and end is not None and t >= end - 1e-6:
                break
            if f.pts is not None:
                f.pts -= shift
            f.index = n
            n += 1
            yield f

    frame_formats = ("rgb24", "yuv420p")

    def set_frame_format(self, fmt: str) -> None:
        """'yuv420p': frames decoded from now on stay yuv420p (``Frame.yuv``, no RGB conversion
        on the CPU) where the stream is 8-bit 4:2:0 with even sides; 'rgb24' (the default):
        ``Frame.rgb``. The pipeline asks for yuv420p when every stage can take it."""
        if fmt not in self.frame_formats:
            raise ValueError(f"Invalid frame format ({fmt!r}). Supported values are {', '.join(self.frame_formats)}.")
        self._yuv = fmt == "yuv420p"

    @property
    def frame_format(self) -> str:
        return "yuv420p" if self._yuv else "rgb24"

    def __iter__(self) -> Iterator[Frame]:
        if self._first is not None:
            first, self._first = self._first, None
            first.t_capture = time.perf_counter()
            yield first
        yield from self._frames

    def close(self) -> None:
        self._frames.close()
        if self.feed is not None:
            log.debug("stdin: the other streams' feed held at most %.1f KiB (%d packet(s) dropped)", self.feed.peak_bytes / 1024, self.feed.dropped)
        self._c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def default_codec_for(path: str | Path) -> str:
    ext = extension(path)
    return (ext.codec if ext is not None else None) or DEFAULT_CODEC


#: Encoders with a constant-quality (CRF) mode that --crf drives; for any other encoder
#: --crf would be ignored, so the command line refuses it.
CRF_ENCODERS = ("libx264", "libx264rgb", "libx265", "libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1")
#: The highest --crf each of them takes (x264 and x265: 51; libvpx, aom and SVT-AV1: 63).
CRF_MAX = {"libx264": 51, "libx264rgb": 51, "libx265": 51}
#: Hardware H.264 encoders ``--codec auto`` tries, in order, before libx264 (each must open here).
AUTO_HW_ENCODERS = ("h264_nvenc",)


def encoder_kind(name: str) -> str | None:
    """'video' / 'audio' / 'subtitle' for an encoder of this FFmpeg build, None when there is none."""
    try:
        return av.codec.Codec(name, "w").type
    except (av.FFmpegError, ValueError):
        return None


def auto_encoder(path: str | Path) -> str:
    """``--codec auto``: a hardware H.264 encoder that really opens here (io/hwcodecs.py
    probes it), else the container's default (libx264; libvpx-vp9 for .webm, ...)."""
    default = default_codec_for(path)
    if default != DEFAULT_CODEC:  # the container needs its own codec
        return default
    from psenet_stream.io.hwcodecs import hw_codecs

    working = hw_codecs()["encoders"]
    for name in AUTO_HW_ENCODERS:
        if working.get(name) == "":
            return name
    return default


def check_encoder_settings(codec: str | None, path: str | Path, *, crf: int | None = None, pix_fmt: str | None = None) -> None:
    """Before any work: --crf only for an encoder that has a constant-quality mode, --pix-fmt
    only one the encoder takes (UsageError, exit 2). ``codec`` None: the container's default;
    'auto' is checked once it is resolved (when the sink opens)."""
    from psenet_stream.errors import UsageError

    name = default_codec_for(path) if codec is None else codec
    if name == "auto":
        name = auto_encoder(path)
    if crf is not None and name not in CRF_ENCODERS:
        raise UsageError(f"--crf is ignored by the encoder {name}", f"use --bitrate (or --encoder-opt) with {name}; --crf works with {', '.join(CRF_ENCODERS)}")
    if crf is not None and crf > CRF_MAX.get(name, 63):
        raise UsageError(f"--crf {crf} is out of range for {name}", f"use 0..{CRF_MAX.get(name, 63)} (lower is better; 18 is visually lossless for x264)")
    if pix_fmt:
        try:
            formats = [f.name for f in (av.codec.Codec(name, "w").video_formats or [])]
        except (av.FFmpegError, ValueError):
            formats = []
        if formats and pix_fmt not in formats:
            raise UsageError(f"the encoder {name} does not take --pix-fmt {pix_fmt}", f"use one of: {', '.join(formats)}")


def encoder_options(codec: str, crf: int | None, preset: str | None, bitrate: int | None = None) -> dict[str, str]:
    """The encoder's private options for --crf / --preset; with --bitrate (and no --crf) the
    encoder runs at that average rate instead of constant quality."""
    opts: dict[str, str] = {}
    if bitrate is not None and crf is None:
        crf = -1  # no constant-quality option: the bit rate rules
    if codec in ("libx264", "libx264rgb", "libx265"):
        if crf != -1:
            opts["crf"] = str(DEFAULT_CRF if crf is None else crf)
        opts["preset"] = preset or DEFAULT_PRESET
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
    elif codec in ("libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1"):
        if crf != -1:
            opts["crf"] = str(31 if crf is None else crf)
        if codec.startswith("libvpx") and crf != -1:
            opts["b"] = "0"
        if codec.startswith("libvpx"):
            opts["deadline"] = "realtime" if preset in ("ultrafast", "superfast", "veryfast") else "good"
            opts["cpu-used"] = "8" if preset in ("ultrafast", "superfast", "veryfast") else "4"
        elif codec == "libsvtav1" and preset:
            opts["preset"] = "12" if preset in ("ultrafast", "superfast", "veryfast") else "8"
    return opts


def check_video_output(path: str | Path, format: str | None = None) -> None:
    """Fail early (before any work) when the output's extension is not a writable container."""
    try:
        av.open(str(path), "w", format=format).close()  # creates nothing until the header is written
    except (av.FFmpegError, ValueError) as e:
        raise OutputError(
            f"cannot write a video to {Path(path).name}: {_err_text(e)}", "use a video container extension: mp4, mkv, mov, webm, avi"
        ) from None


class VideoFileSink:
    """Encode frames into a video file; copy the audio of ``audio_from`` (or ``feed``) unchanged.

    ``write(frame, enhanced)``: (H, W, 3) uint8 RGB in [0, 255], or (H * 3 / 2, W) uint8
    yuv420p in the frame's matrix (``accepts_yuv``); ``frame.pts`` / ``time_base`` are kept.

    Writes ``path`` exactly (the caller picks a temporary name and renames; see
    sinks.AtomicPath). The container opens on the first frame, which locks the size.
    ``finish(audio=True)`` flushes the encoder, copies the rest of the audio and writes the
    trailer; with ``audio=False`` (an interrupted run) audio stops at the last video frame.
    """

    def __init__(
        self,
        path: str | Path,
        info: StreamInfo,
        *,
        codec: str | None = None,
        crf: int | None = None,
        preset: str | None = None,
        audio_from: str | Path | None = None,
        format: str | None = None,
        threads: int = 0,
        name: str | None = None,
        pix_fmt: str | None = None,
        bitrate: int | None = None,
        maxrate: int | None = None,
        encoder_opts: dict[str, str] | None = None,
        audio_shift_s: float = 0.0,
        cut_audio: bool = False,
        maps: tuple[str, ...] | list[str] | None = None,
        hdr: str = "keep",
        feed: PacketFeed | None = None,
    ):
        self.path = Path(path)
        self.name = name or self.path.name  # for messages (the final name, not the temporary one)
        self.info = info
        self.codec = auto_encoder(self.path) if codec == "auto" else (codec or default_codec_for(self.path))
        if codec == "auto" and crf is not None and self.codec not in CRF_ENCODERS:
            log.info("note: --codec auto chose %s, which has no CRF mode; --crf %d is not used", self.codec, crf)
            crf = None
        self.crf, self.preset, self.format, self.threads = crf, preset, format, threads
        self.pix_fmt, self.bitrate, self.maxrate = pix_fmt, bitrate, maxrate
        self.encoder_opts = dict(encoder_opts or {})
        # a trimmed input (-ss/-t/--frames): audio from audio_shift_s s on, moved back by that
        # much (as the video was), and ending with the last video frame
        self.audio_shift_s, self.cut_audio = audio_shift_s, cut_audio
        self._video_end_s = 0.0
        self.audio_from = audio_from  # the input whose other streams, tags and chapters are copied
        self.feed = feed  # ... or, for an input read once (stdin), its packets as its source demuxes them
        self.maps = tuple(maps or ())
        self.hdr = hdr
        self._copier = None
        self._high = False  # high-bit-depth output (set by the first frame)
        self._oc = None
        self._vs = None
        self._closed = False
        self._size: tuple[int, int] | None = None
        self._ain = None
        self.frames_written = 0
        try:
            av.codec.Codec(self.codec, "w")
        except (av.FFmpegError, ValueError) as e:
            raise OutputError(
                f"unknown or unavailable encoder {self.codec!r}: {_err_text(e)}",
                "use --codec libx264 (see `psenet-stream doctor` for encoders)",
            ) from None

    # --- opening ------------------------------------------------------------------------------
    def _open(self, frame: Frame, h: int, w: int) -> None:
        # the other streams: copied where the container holds them (audio otherwise re-encoded:
        # AAC, or Opus for WebM-like containers); if the container still refuses them, audio
        # re-encoded and the rest left out; as a last resort the video alone
        webm_like = self.path.suffix.lower() in (".webm", ".ogg", ".ogv") or self.format in ("webm", "ogg")
        self._audio_encoders = ["libopus", "aac"] if webm_like else ["aac", "libopus"]
        modes = ["copy", "copy-safe", "encode", None] if (self.audio_from is not None or self.feed is not None) else [None]
        problem = self._encoder_problem(frame, h, w)
        if problem:  # the video encoder itself: say so once (not as an audio problem per fallback)
            raise OutputError(
                f"the video encoder {self.codec} cannot start for {self.name}: {problem}",
                "check --codec, --pix-fmt, --bitrate and --encoder-opt (`psenet-stream doctor` lists the encoders that work here)",
            )
        for i, mode in enumerate(modes):
            try:
                self._open_container(frame, h, w, audio_mode=mode)
                break
            except (av.FFmpegError, ValueError) as e:
                self._close_quietly()
                self.path.unlink(missing_ok=True)
                if i == len(modes) - 1:
                    raise OutputError(f"cannot write {self.name}: {_err_text(e)}", "choose another output extension or --codec") from None
                how = {"copy-safe": "leaving out cover pictures, data streams and attachments",
                       "encode": "re-encoding the audio and leaving the other streams out", None: "writing the video alone"}[modes[i + 1]]
                log.warning("note: the input's other streams cannot go into %s as they are (%s); %s", self.name, _err_text(e), how)

    def _open_container(self, frame: Frame, h: int, w: int, audio_mode: str | None) -> None:
        info = self.info
        try:
            self._oc = oc = av.open(str(self.path), "w", format=self.format)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise OutputError(
                f"cannot create {self.name}: {_err_text(e)}",
                "check the directory is writable and the extension is a video container (mp4, mkv, mov, webm, avi)",
            ) from None
        tb = frame.time_base or info.time_base or (Fraction(1, int(info.fps)) if info.fps else Fraction(1, 30))
        rate = info.fps if info.fps else (Fraction(1) / tb if tb.numerator == 1 and tb.denominator <= 240 else Fraction(30))
        color = self._out_color()
        vs = oc.add_stream(self.codec, rate=rate, options=self._options())
        vs.width, vs.height = w, h
        vs.pix_fmt = self._pix_fmt(vs.codec_context.codec, h, w)
        if self._high and not self.pix_fmt and pix_fmt_bits(vs.pix_fmt) <= 8:
            log.warning("warning: %s cannot encode 10-bit video; the output is 8-bit (choose --codec libx265 or libx264)", self.codec)
        vs.time_base = tb
        vs.codec_context.time_base = tb
        self._rate_control(vs.codec_context)
        if vs.codec_context.codec.name in ("libx265", "hevc_nvenc", "hevc_qsv", "hevc_vaapi") and (
            self.path.suffix.lower() in (".mp4", ".mov", ".m4v") or self.format in ("mp4", "mov")
        ):
            vs.codec_context.codec_tag = "hvc1"  # Apple players open HEVC in MP4 only under this tag (ffmpeg: -tag:v hvc1)
        if self.threads:
            vs.codec_context.thread_count = self.threads
        for k in ("color_range", "colorspace", "color_primaries", "color_trc"):
            if color.get(k):
                try:
                    setattr(vs.codec_context, k, color[k])
                except (AttributeError, ValueError, TypeError):
                    pass
        rot = frame.rotation or info.rotation
        if rot:
            vs.set_display_rotation(rot)
        self._vs = vs
        self._enc_colorspace = color.get("colorspace") or None
        self._enc_range = 2 if color.get("color_range") == 2 else 1
        # every other stream of the input (audio, subtitles, data, attachments), its tags and chapters
        self._copier = None
        if audio_mode is not None:
            if self.feed is not None:  # the source's own container (stdin), its streams as the source selected them
                ic, _video, others = self.feed.container, self.feed.video, self.feed.streams
            else:
                self._ain = ic = av.open(str(self.audio_from), timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S))
                _video, others = select_streams(ic, self.maps)
            with self.feed.lock if self.feed is not None else contextlib.nullcontext():  # the source's thread demuxes it meanwhile
                copy_container_tags(ic, oc)
                if _video is not None:
                    copy_stream_tags(_video, vs)
                self._copier = StreamCopier(
                    ic, oc, others, mode=audio_mode, audio_encoders=self._audio_encoders, out_name=self.name, shift_s=self.audio_shift_s,
                    feed=self.feed,
                )
        oc.start_encoding()

    # --- the encoder's settings ---------------------------------------------------------------
    def _out_color(self) -> dict:
        """The colour tags written: the input's, or BT.709 for HDR tone-mapped to SDR (--hdr sdr)."""
        color = dict(self.info.color or {})
        if color.get("color_trc") in (16, 18) and self.hdr == "sdr":
            return {"color_range": 1, "colorspace": 1, "color_primaries": 1, "color_trc": 1}
        return color

    def _options(self) -> dict[str, str]:
        opts = encoder_options(self.codec, self.crf, self.preset, self.bitrate)
        color = self._out_color()
        if color.get("color_trc") in (16, 18):  # HDR out: the mastering display / light level metadata go into the bitstream again
            for k, v in hdr_encoder_params(self.codec, self.info.hdr or {}, color).items():
                opts[k] = f"{opts[k]}:{v}" if k in opts else v
        for k, v in self.encoder_opts.items():  # --encoder-opt KEY=VALUE (and --x264-params) win; x26x params add up
            opts[k] = f"{opts[k]}:{v}" if k in ("x264-params", "x265-params") and k in opts else v
        return opts

    def _pix_fmt(self, codec, h: int, w: int) -> str:
        """--pix-fmt, else yuv420p (yuv444p for odd sizes; 10-bit, or 12 where the input is,
        for high-bit-depth frames), else the encoder's first format."""
        if self.pix_fmt:
            return self.pix_fmt
        fmts = [f.name for f in (codec.video_formats or [])]
        want = "yuv420p" if (w % 2 == 0 and h % 2 == 0) else "yuv444p"
        if self._high:
            bits = 12 if pix_fmt_bits(self.info.pix_fmt) >= 12 and f"{want}12le" in fmts else 10
            if f"{want}{bits}le" in fmts:
                return f"{want}{bits}le"
        return want if (not fmts or want in fmts) else fmts[0]

    def _rate_control(self, cc) -> None:
        if self.bitrate:
            cc.bit_rate = self.bitrate
        if self.maxrate:
            opts = dict(cc.options)
            opts.setdefault("maxrate", str(self.maxrate))
            opts.setdefault("bufsize", str(2 * self.maxrate))
            cc.options = opts

    def _encoder_problem(self, frame: Frame, h: int, w: int) -> str:
        """'' when the video encoder opens with these settings, else FFmpeg's reason."""
        try:
            cc = av.CodecContext.create(self.codec, "w")
            cc.width, cc.height = w, h
            cc.pix_fmt = self._pix_fmt(cc.codec, h, w)
            cc.time_base = frame.time_base or self.info.time_base or Fraction(1, 30)
            cc.options = self._options()
            self._rate_control(cc)
            cc.open()
        except (av.FFmpegError, ValueError) as e:
            return _err_text(e)
        return ""

    # --- writing ------------------------------------------------------------------------------
    accepts_yuv = True  # write() also takes (H * 3 / 2, W) yuv420p arrays (yuv mode)
    accepts_high_bit_depth = True  # and (H, W, 3) uint16 RGB (10/12-bit video), encoded 10/12-bit

    def write(self, frame: Frame, enhanced: np.ndarray) -> None:
        if self._closed:
            raise OutputError("write after close", "this is a bug in psenet-stream")
        yuv = enhanced.ndim == 2
        h, w = (enhanced.shape[0] * 2 // 3, enhanced.shape[1]) if yuv else enhanced.shape[:2]
        if self._oc is None:
            self._high = not yuv and enhanced.dtype == np.uint16
            self._open(frame, h, w)
            self._size = (h, w)
        elif (h, w) != self._size:
            raise OutputError(
                f"frame size changed from {self._size[1]}x{self._size[0]} to {w}x{h} mid-stream", "split the input where its size changes"
            )
        if yuv:  # already yuv420p, in the source's matrix and range (yuv mode)
            vf = av.VideoFrame.from_ndarray(enhanced, format="yuv420p")
            vf.colorspace = self._enc_colorspace or 2
            vf.color_range = self._enc_range
            if self._vs.pix_fmt != "yuv420p":
                vf = vf.reformat(format=self._vs.pix_fmt, dst_colorspace=self._enc_colorspace, dst_color_range=self._enc_range)
        elif enhanced.dtype == np.uint16:  # high bit depth (10/12-bit video)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(enhanced), format="rgb48le")
            vf = vf.reformat(format=self._vs.pix_fmt, dst_colorspace=self._enc_colorspace, dst_color_range=self._enc_range)
            vf.colorspace = self._enc_colorspace or 2
            vf.color_range = self._enc_range
        elif self._vs.pix_fmt == "yuv420p":
            vf = av.VideoFrame.from_ndarray(rgb_to_yuv420p_np(enhanced, self._enc_colorspace, self._enc_range == 2), format="yuv420p")
            vf.colorspace = self._enc_colorspace or 2
            vf.color_range = self._enc_range
        else:
            vf = av.VideoFrame.from_ndarray(enhanced, format="rgb24")
            vf = vf.reformat(format=self._vs.pix_fmt, dst_colorspace=self._enc_colorspace, dst_color_range=self._enc_range)
        if frame.pts is not None and frame.time_base is not None:
            vf.pts, vf.time_base = frame.pts, frame.time_base
        else:
            vf.pts, vf.time_base = self.frames_written, self._vs.codec_context.time_base
        try:
            for pkt in self._vs.encode(vf):
                self._oc.mux(pkt)
            self.frames_written += 1
            self._video_end_s = float(vf.pts * vf.time_base) + (1 / float(self.info.fps) if self.info.fps else 0.0)
            if self._copier is not None:  # a trimmed run muxes no audio ahead of the video: its end is the video's
                self._pump_audio(float(vf.pts * vf.time_base) + (0.0 if self.cut_audio else AUDIO_LEAD_S))
        except OSError as e:  # disk full, file too large, I/O error (av.error.OSError is one too)
            raise OutputError(f"cannot write {self.name}: {_err_text(e)}", WRITE_HINT) from None

    def _pump_audio(self, until_s: float | None) -> None:
        """Copy the other streams' packets whose time is <= until_s (None: all of them)."""
        if self._copier is not None:
            self._copier.pump(until_s)

    @property
    def audio_packets(self) -> int:
        return self._copier.packets if self._copier is not None else 0

    # --- closing ------------------------------------------------------------------------------
    def finish(self, audio: bool = True) -> None:
        """Flush the encoder and write the trailer; the file is playable afterwards."""
        if self._closed:
            return
        self._closed = True
        if self._oc is None:
            return
        try:
            for pkt in self._vs.encode(None):
                self._oc.mux(pkt)
            if self._copier is not None and audio:
                self._pump_audio(self._video_end_s if self.cut_audio else None)
                if self.cut_audio:  # the rest of the input's streams is past the trimmed end
                    self._copier.stop()
            oc, self._oc = self._oc, None
            oc.close()  # writes the trailer (mp4: the index): if that fails the file is unplayable
        except OSError as e:
            raise OutputError(f"cannot write {self.name}: {_err_text(e)}", WRITE_HINT) from None
        finally:
            self._close_quietly()

    def close(self) -> None:
        self.finish(audio=True)

    def _close_quietly(self) -> None:
        for c in (self._ain, self._oc):
            if c is not None:
                try:
                    c.close()
                except av.FFmpegError as e:  # pragma: no cover - trailer write failure
                    log.warning("warning: closing %s: %s", self.path.name, _err_text(e))
        self._ain = self._oc = None
        self._copier = None


def decode_rgb(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """The first ``max_frames`` (None: all) frames of a video file as (H, W, 3) uint8 RGB in
    [0, 255], coded orientation, through VideoFileSource (same checks and errors; 10-bit
    video rounded to 8 bits)."""
    src = VideoFileSource(path, high_bit_depth=False)
    try:
        for n, frame in enumerate(src, start=1):
            yield frame.rgb
            if max_frames is not None and n >= max_frames:
                return
    finally:
        src.close()


def write_rgb_clip(path: str | Path, frames: np.ndarray, fps: int = 30) -> Path:
    """Encode (N, H, W, 3) uint8 RGB frames as H.264 (yuv420p, swscale's conversion) at ``fps``:
    test clips and the benchmark's input. No audio, no atomic rename."""
    h, w = frames.shape[1:3]
    with av.open(str(path), "w") as oc:
        st = oc.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "18"})
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        for f in frames:
            for pkt in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                oc.mux(pkt)
        for pkt in st.encode(None):
            oc.mux(pkt)
    return path
