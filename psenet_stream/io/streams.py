"""Which streams of a video file are processed, which are copied, and how they are copied.

The enhanced picture is one video stream; everything else the output container can hold
is carried over as ffmpeg's stream copy would keep it:

- ``pick_video_stream``: the container's main video, never a one-frame cover picture
  (``attached_pic``: an mkv cover attachment, an mp4 ``covr``), even when it comes first.
- ``parse_map`` / ``select_streams``: ``--map`` as in ffmpeg for input 0 (``0``, ``0:v:0``,
  ``0:a``, ``0:a:1``, ``0:s?``, ``0:3``, ``-0:a:1`` to leave one out). Without maps every
  stream is selected.
- ``StreamCopier``: adds the selected non-enhanced streams to an output container and
  copies their packets, interleaved with the video by the caller (``pump(until_s)``):
  audio byte for byte, or re-encoded (AAC / Opus) when the container refuses the codec;
  text subtitles byte for byte, or converted between ``mov_text`` (mp4/mov) and
  ``subrip`` (mkv) at the packet level; data streams; attachments (fonts in mkv) and cover
  pictures. Stream metadata (language, title, handler) and dispositions are kept. A stream
  that cannot go into the output is named in a warning.
- ``copy_container_tags``: the container's metadata (title, creation_time, location, ...)
  and chapters.
- ``PacketFeed``: the same copy for an input that can be read only once (a container on
  stdin): the source demuxes every selected stream in its one pass, decodes the video and
  hands the other streams' packets to the feed, from which the copier takes them as the
  video is written. Nothing is spooled to disk; the video path's bounded queues pace the
  demuxer, so the feed holds only what the container interleaves ahead of the video
  (a hard cap, ``FEED_MAX_BYTES``, drops packets past it with a warning rather than grow).
- ``Continuity``: timestamps that jump back (or far ahead) in an MPEG-TS (two recordings
  concatenated, a camera restarting its clock) are moved so the stream continues where it
  was, as ffmpeg does for formats with timestamp discontinuities.
"""

from __future__ import annotations

import collections
import logging
import re
import struct
import threading
from dataclasses import dataclass
from fractions import Fraction

import av

from psenet_stream.errors import UsageError

log = logging.getLogger("psenet_stream")

# container tags that describe the file written, not the content: the muxer writes its own
_WRITER_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}
_STREAM_WRITER_TAGS = {"encoder", "duration", "number_of_frames", "number_of_bytes", "_statistics_tags", "_statistics_writing_app",
                       "_statistics_writing_date_utc", "bps", "vendor_id"}
_DISCONT_FORMATS = ("mpegts", "mpegtsraw", "mpeg", "vob", "hls", "flv")  # AVFMT_TS_DISCONT demuxers
DISCONT_BACK_S = 1.0  # a timestamp this far behind the previous one starts a new segment
DISCONT_AHEAD_S = 10.0  # ... or this far ahead (ffmpeg's dts_delta_threshold)
FEED_MAX_BYTES = 128 << 20  # a PacketFeed never holds more (about 2 h of 128 kb/s AAC ahead of the video)


def is_cover(st) -> bool:
    """A one-picture video stream (cover art, an attached thumbnail)."""
    d = int(st.disposition or 0)
    return st.type == "video" and bool(d & (int(av.stream.Disposition.attached_pic) | int(av.stream.Disposition.still_image)))


def pick_video_stream(container, index: int | None = None):
    """The video stream to enhance: ``index`` when given (from ``--map``), else the best
    video that is not a cover picture (ffmpeg's choice: av_find_best_stream among those,
    the default-flagged one first). None when there is none."""
    if index is not None:
        return container.streams[index]
    videos = [s for s in container.streams.video if not is_cover(s)]
    if not videos:
        return None
    try:
        best = container.streams.best("video")
    except (av.FFmpegError, ValueError):  # pragma: no cover - best() exists in every PyAV we support
        best = None
    if best is not None and best in videos:
        return best
    default = [s for s in videos if int(s.disposition or 0) & int(av.stream.Disposition.default)]
    return (default or videos)[0]


@dataclass(frozen=True)
class MapSpec:
    """One ``--map``: input 0 only; kind v/a/s/d/t or None (any); n the position among that
    kind (or the absolute index when kind is None); negative leaves streams out."""

    negative: bool
    kind: str | None
    n: int | None
    optional: bool
    text: str

    def matches(self, st, position: int) -> bool:
        kind = {"video": "v", "audio": "a", "subtitle": "s", "data": "d", "attachment": "t"}.get(st.type)
        if self.kind is not None and kind != self.kind:
            return False
        if self.n is None:
            return True
        return (position if self.kind is not None else st.index) == self.n


_MAP_RE = re.compile(r"^(-)?0(?::([vasdtV]))?(?::(\d+))?(\?)?$")


def parse_map(text: str) -> MapSpec:
    m = _MAP_RE.match(text.strip())
    if not m:
        raise UsageError(
            f"bad --map {text!r}",
            "use ffmpeg's form for the one input: 0 (all), 0:v:0, 0:a (every audio), 0:a:1, 0:s?, 0:3 (stream #3), -0:a:1 (leave out)",
        )
    neg, kind, n, opt = m.groups()
    if kind == "V":
        kind = "v"
    return MapSpec(bool(neg), kind, int(n) if n is not None else None, bool(opt), text)


def select_streams(container, maps: list[str] | tuple[str, ...] | None) -> tuple[object, list]:
    """(the video stream to enhance, the other selected streams in input order).

    No maps: the best video (``pick_video_stream``) and every other stream. With maps:
    the streams the positive maps name, minus those the negative ones name, in map order
    as ffmpeg does; the first selected video that is not a cover is the one enhanced."""
    if not maps:
        video = pick_video_stream(container)
        return video, [s for s in container.streams if video is None or s.index != video.index]
    specs = [parse_map(m) for m in maps]
    positions: dict[int, int] = {}
    counts: dict[str, int] = {}
    for st in container.streams:
        positions[st.index] = counts.get(st.type, 0)
        counts[st.type] = positions[st.index] + 1
    chosen: list = []
    for spec in specs:
        if spec.negative:
            continue
        found = [st for st in container.streams if spec.matches(st, positions[st.index])]
        if not found and not spec.optional:
            raise UsageError(f"--map {spec.text} matches no stream of the input", "list the input's streams with `psenet-stream enhance -v`, or add '?' to make the map optional")
        chosen += [st for st in found if st not in chosen]
    if not any(not s.negative for s in specs):  # only negative maps: start from everything
        chosen = list(container.streams)
    for spec in specs:
        if spec.negative:
            chosen = [st for st in chosen if not spec.matches(st, positions[st.index])]
    videos = [s for s in chosen if s.type == "video"]
    candidates = [s for s in videos if not is_cover(s)] or videos
    best = pick_video_stream(container)
    main = best if best in candidates else (candidates[0] if candidates else None)
    if main is None:
        raise UsageError("the --map options select no video stream", "add --map 0:v:0 (the video is what is enhanced)")
    return main, [s for s in chosen if s is not main]


def describe(st) -> str:
    cc = st.codec_context
    codec = cc.name if cc is not None else (getattr(st, "mimetype", None) or "unknown")
    lang = (st.metadata or {}).get("language")
    return f"#{st.index} ({st.type} {codec}{', ' + lang if lang else ''})"


def copy_container_tags(ic, oc) -> None:
    """Container metadata and chapters of ``ic`` onto ``oc`` (before its header is written)."""
    for k, v in (ic.metadata or {}).items():
        if k.lower() not in _WRITER_TAGS:
            oc.metadata[k] = v
    try:
        chapters = ic.chapters()
    except (AttributeError, av.FFmpegError):  # pragma: no cover - chapters() exists in PyAV >= 14
        chapters = []
    if chapters:
        try:
            oc.set_chapters(chapters)
        except (av.FFmpegError, ValueError, TypeError) as e:
            log.warning("warning: the chapters cannot be written to this output (%s); they are left out", e)


def copy_stream_tags(ist, ost) -> None:
    for k, v in (ist.metadata or {}).items():
        if k.lower() not in _STREAM_WRITER_TAGS and not k.upper().startswith("DURATION"):
            ost.metadata[k] = v
    try:
        ost.disposition = ist.disposition
    except (AttributeError, ValueError, TypeError):  # pragma: no cover
        pass


class Continuity:
    """Timestamps in seconds made continuous across resets (MPEG-TS and the like).

    ``fix(t, dur)`` returns t plus the current offset; when t jumps back more than
    ``DISCONT_BACK_S`` or ahead more than ``DISCONT_AHEAD_S`` from where the stream was, the
    offset changes so the stream continues right after its last timestamp."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.offset = 0.0
        self.next: float | None = None  # where the stream is expected to continue (s, offset applied)
        self.resets = 0

    def fix(self, t: float, dur: float = 0.0) -> float:
        if not self.enabled:
            return t
        out = t + self.offset
        if self.next is not None and (out < self.next - DISCONT_BACK_S or out > self.next + DISCONT_AHEAD_S):
            self.offset += self.next - out
            out = self.next
            self.resets += 1
        self.next = max(self.next or out, out + max(dur, 0.0))
        return out


def has_discontinuities(container) -> bool:
    names = set((container.format.name or "").split(","))
    return bool(names & set(_DISCONT_FORMATS))


class Retimer:
    """The copied packets' timestamps: the discontinuity offset (``Continuity``) and the -ss
    shift, pts and dts moved together. ``retime(pkt)`` is False for a packet that ends
    before the trimmed start (a packet across the start is kept, as ffmpeg's stream copy
    does). Packets must come in demux order."""

    def __init__(self, container, shift_s: float = 0.0):
        self.shift_s = float(shift_s or 0.0)  # -ss: packets before it are left out, the rest moved back by it
        self._cont = Continuity(has_discontinuities(container))

    def retime(self, pkt) -> bool:
        t = pkt.dts if pkt.dts is not None else pkt.pts
        if t is None or pkt.time_base is None:
            return True
        tb = pkt.time_base
        shift = 0.0
        if self._cont.enabled:
            if pkt.stream.type in ("subtitle", "data"):  # sparse streams follow the offset the audio/video established
                shift = self._cont.offset
            else:
                before = float(t * tb)
                shift = self._cont.fix(before, float((pkt.duration or 0) * tb)) - before
        if self.shift_s:
            start = pkt.pts if pkt.pts is not None else t
            if float((start + (pkt.duration or 0)) * tb) + shift <= self.shift_s + 1e-6:
                return False
            shift -= self.shift_s
        if shift:
            d = round(Fraction(shift) / Fraction(tb))
            if pkt.pts is not None:
                pkt.pts += d
            if pkt.dts is not None:
                pkt.dts += d
            if self.shift_s and pkt.stream.type != "audio" and pkt.pts is not None and pkt.pts < 0:
                # a subtitle or picture that began before the trimmed start: from the start on
                # (a negative time would make the muxer move every stream later)
                if pkt.duration:
                    pkt.duration = max(1, pkt.duration + pkt.pts)
                pkt.pts = pkt.dts = 0
        return True


class PacketFeed:
    """The other streams of an input that is read once (a container on stdin).

    The source demuxes its video and ``streams`` in one pass: video packets go to its
    decoder, the others to ``put`` (the read thread); the file sink's ``StreamCopier`` takes
    them with ``get`` as it writes the video (the write thread). Packets are retimed on the
    way in (``Retimer``: the source sets ``retimer.shift_s`` when it trims), so those before
    -ss are never held. ``put`` never blocks: the demuxer is paced by the video's bounded
    queues, so the feed holds only what the container interleaves ahead of the video; past
    ``max_bytes`` (a container with one stream far ahead of the video, or audio that goes on
    long after the video ends) packets are dropped and the stream is named in a warning.
    Cover pictures' one packet is also kept in ``covers`` (an mkv output writes it as an
    attachment before any packet is copied).

    The two threads share one demuxer: ``demux`` reads each packet under ``lock`` (the
    demuxer may update a stream's parameters as it reads), and the sink holds ``lock`` while
    it copies the streams' parameters into its output."""

    def __init__(self, container, video, streams: list, *, max_bytes: int = FEED_MAX_BYTES):
        self.container, self.video, self.streams = container, video, list(streams)
        self.demuxed = [s for s in self.streams if s.type != "attachment"]  # attachments have no packets
        self.retimer = Retimer(container)
        self.covers: dict[int, bytes] = {}
        self.max_bytes = max_bytes
        self.dropped = 0
        self.peak_bytes = 0
        self._q: collections.deque = collections.deque()
        self._bytes = 0
        self._lock = threading.Lock()  # the queue
        self.lock = threading.Lock()  # the container: one reader of its streams' parameters at a time

    def demux(self):
        """The video's and the other streams' packets in one pass, in the container's order
        (the source's loop; it hands the others to ``put``)."""
        it = self.container.demux(self.video, *self.demuxed)
        while True:
            with self.lock:
                try:
                    pkt = next(it)
                except StopIteration:
                    return
            yield pkt

    def put(self, pkt) -> None:
        if not pkt.size:  # the demuxer's flush packets
            return
        st = pkt.stream
        if is_cover(st) and st.index not in self.covers:
            self.covers[st.index] = bytes(pkt)
        if not self.retimer.retime(pkt):
            return  # before the trimmed start
        with self._lock:
            if self._bytes + pkt.size > self.max_bytes:
                self.dropped += 1
                if self.dropped == 1:
                    log.warning("warning: stream %s runs too far ahead of the video on stdin (%d MiB held); its packets are dropped "
                                "from here (pass the file name instead of '-' to keep them)", describe(st), self.max_bytes >> 20)
                return
            self._q.append(pkt)
            self._bytes += pkt.size
            self.peak_bytes = max(self.peak_bytes, self._bytes)

    def get(self):
        """The oldest packet held, or None when there is none now (never blocks)."""
        with self._lock:
            if not self._q:
                return None
            pkt = self._q.popleft()
            self._bytes -= pkt.size
            return pkt

    def __len__(self) -> int:
        with self._lock:
            return len(self._q)


# What FFmpeg's MPEG-TS muxer carries (libavformat/mpegtsenc.c). It answers no codec query, so
# PyAV's ``supported_codecs`` lists only its defaults (mpeg2video, mp2) and AAC would be
# re-encoded for nothing.
_MPEGTS_CODECS = {"aac", "aac_latm", "mp3", "mp2", "ac3", "eac3", "dts", "truehd", "opus", "s302m", "h264", "hevc", "mpeg2video",
                  "mpeg4", "mpeg1video", "vc1", "av1", "dvb_subtitle", "dvb_teletext", "arib_caption", "smpte_klv", "timed_id3"}

_PICTURES = {"mjpeg": ("jpg", "image/jpeg"), "png": ("png", "image/png"), "bmp": ("bmp", "image/bmp")}  # a cover's file name and type

# --- subtitles between containers -----------------------------------------------------------
TEXT_SUBS = {"mov_text": "mov_text", "subrip": "subrip", "srt": "subrip"}


def _mov_text_to_srt(data: bytes) -> bytes:
    """A mov_text (tx3g) sample: a 16-bit big-endian length, the UTF-8 text, style boxes."""
    if len(data) < 2:
        return b""
    n = struct.unpack(">H", data[:2])[0]
    return data[2 : 2 + n]


def _srt_to_mov_text(data: bytes) -> bytes:
    text = re.sub(rb"</?[biu]>|<font[^>]*>|</font>", b"", data)[:65535]
    return struct.pack(">H", len(text)) + text


def sub_converter(src_codec: str, dst_codec: str):
    if src_codec == dst_codec:
        return None
    if src_codec == "mov_text" and dst_codec == "subrip":
        return _mov_text_to_srt
    if src_codec in ("subrip", "srt") and dst_codec == "mov_text":
        return _srt_to_mov_text
    raise ValueError(f"no conversion from {src_codec} to {dst_codec}")


def _is_matroska(oc) -> bool:
    return "matroska" in (oc.format.name or "") or "webm" in (oc.format.name or "")


def _is_mov_in(ic) -> bool:
    return bool({"mp4", "mov", "m4a", "3gp"} & set((ic.format.name or "").split(",")))


def _is_mov(oc) -> bool:
    return bool({"mp4", "mov", "ipod", "3gp", "ismv"} & set((oc.format.name or "").split(",")))


class StreamCopier:
    """Add the selected streams of ``ic`` to ``oc`` and copy their packets.

    ``mode``: "copy" keeps each stream as it is where the container can hold it (audio is
    otherwise re-encoded, text subtitles converted, anything else left out with a
    warning); "copy-safe" (the first fallback, when the muxer refused the header) leaves out
    cover pictures, data streams and attachments; "encode" re-encodes every audio stream and
    keeps nothing else (the last fallback before the video alone).
    ``audio_encoders``: the encoders to try for audio, best first.
    ``feed``: the packets come from this ``PacketFeed`` (already retimed) instead of a
    second pass over ``ic`` (an input on stdin cannot be read twice).
    """

    def __init__(self, ic, oc, streams: list, *, mode: str, audio_encoders: list[str], out_name: str, shift_s: float = 0.0,
                 feed: PacketFeed | None = None):
        self.ic, self.oc, self.mode = ic, oc, mode
        self._feed = feed
        self._retimer = Retimer(ic, shift_s)
        self.out_name = out_name
        self.entries: dict[int, tuple] = {}  # input index -> (input stream, output stream, how, converter)
        self.left_out: list[str] = []
        self.packets = 0
        self.skipped = 0
        self._pending = None
        self._demux = None
        supported = set(getattr(oc, "supported_codecs", ()) or ())
        if "mpegts" in (oc.format.name or "").split(","):
            supported |= _MPEGTS_CODECS
        try:
            has_chapters = bool(ic.chapters())
        except (AttributeError, av.FFmpegError):  # pragma: no cover
            has_chapters = False
        video_timecode = any("timecode" in (v.metadata or {}) for v in ic.streams.video)
        for st in streams:
            md = st.metadata or {}
            if st.type == "data" and "timecode" in md and video_timecode:
                continue  # a timecode track: kept as the video's timecode tag (mov/mp4 write the track again from it)
            if st.type == "data" and md.get("handler_name") != "TimeCodeHandler" and st.codec_context is None and has_chapters and _is_mov_in(ic):
                continue  # an mp4's chapter text track: the chapters themselves are copied (copy_container_tags)
            try:
                self._add(st, supported, audio_encoders)
            except (av.FFmpegError, ValueError, TypeError, AttributeError) as e:
                self.left_out.append(f"{describe(st)} cannot go into {out_name} ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
        if self.left_out:
            for why in self.left_out:
                log.warning("warning: stream %s; it is left out", why)
        demuxed = [e[0] for e in self.entries.values() if e[2] != "attachment"]
        self._demux = ic.demux(*demuxed) if demuxed and feed is None else None

    def _add(self, st, supported: set, audio_encoders: list[str]) -> None:
        oc = self.oc
        cc = st.codec_context
        codec = cc.name if cc is not None else None
        if st.type == "attachment":
            if not _is_matroska(oc):
                raise ValueError("only mkv holds attachments")
            oc.add_attachment(st.name or f"attachment{st.index}", st.mimetype or "application/octet-stream", st.data)
            self.entries[st.index] = (st, None, "attachment", None)
            return
        if self.mode == "copy-safe" and (st.type in ("data", "attachment") or is_cover(st)):
            raise ValueError("left out: the container refused it")
        if cc is None and st.type == "data":  # data streams have no decoder: copied by their parameters
            if self.mode == "encode":
                raise ValueError("left out after the container refused the copied streams")
            ost = oc.add_stream_from_template(st)
            copy_stream_tags(st, ost)
            self.entries[st.index] = (st, ost, "copy", None)
            return
        if cc is None:
            raise ValueError("no codec parameters (damaged header?)")
        if st.type == "video" and is_cover(st):
            if _is_matroska(oc):  # mkv keeps cover art as an attachment: the picture's one packet
                data = self._cover_bytes(st)
                md = st.metadata or {}
                ext, mime = _PICTURES.get(codec or "mjpeg", (codec, "application/octet-stream"))
                oc.add_attachment(md.get("filename") or f"cover{st.index}.{ext}", md.get("mimetype") or mime, data)
                self.entries[st.index] = (st, None, "attachment", None)
                return
            if not _is_mov(oc) or codec not in ("mjpeg", "png", "bmp"):
                raise ValueError("this container holds no cover picture")
        if st.type == "audio" and (self.mode == "encode" or (supported and codec not in supported)):
            for enc in audio_encoders:
                try:
                    rate = 48000 if enc == "libopus" else (cc.sample_rate or 48000)
                    oa = oc.add_stream(enc, rate=rate)
                    try:
                        oa.layout = cc.layout
                    except (AttributeError, ValueError):
                        pass
                    copy_stream_tags(st, oa)
                    self.entries[st.index] = (st, oa, "encode", None)
                    if self.mode == "copy":
                        log.info("note: audio %s is re-encoded to %s (%s cannot hold %s)", describe(st), enc, self.out_name, codec)
                    return
                except (av.FFmpegError, ValueError):
                    continue
            raise ValueError("no audio encoder for this container")
        if st.type == "subtitle":
            if self.mode == "encode":
                raise ValueError("left out after the container refused the copied streams")
            target = codec
            if supported and codec not in supported:
                target = "mov_text" if "mov_text" in supported else ("subrip" if "subrip" in supported else None)
                if codec not in TEXT_SUBS or target is None:
                    raise ValueError(f"{self.out_name} cannot hold {codec} subtitles")
            conv = sub_converter(TEXT_SUBS.get(codec, codec), target) if target != codec else None
            if conv is None:
                ost = oc.add_stream_from_template(st)
            else:
                ost = oc.add_mux_stream(target)
                ost.time_base = st.time_base
            copy_stream_tags(st, ost)
            self.entries[st.index] = (st, ost, "copy", conv)
            return
        if self.mode == "encode" and st.type != "audio":
            raise ValueError("left out after the container refused the copied streams")
        if supported and codec not in supported and st.type != "data":
            raise ValueError(f"{self.out_name} cannot hold {codec}")
        ost = oc.add_stream_from_template(st)
        copy_stream_tags(st, ost)
        self.entries[st.index] = (st, ost, "copy", None)

    @property
    def active(self) -> bool:
        return bool(self.entries)

    def _damaged(self) -> None:
        self.skipped += 1
        if self.skipped == 1:
            log.warning("warning: skipping damaged packet(s) of the input's other streams (out-of-order timestamps or undecodable)")

    def pump(self, until_s: float | None) -> None:
        """Copy input packets whose time is <= until_s (None: all the rest, then flush).
        From a feed: only the packets it holds now (the rest are not demuxed yet)."""
        while True:
            pkt = self._pending if self._pending is not None else self._take()
            if pkt is None:
                break
            t = pkt.dts if pkt.dts is not None else pkt.pts
            if until_s is not None and t is not None and pkt.time_base is not None and float(t * pkt.time_base) > until_s:
                self._pending = pkt
                return
            self._pending = None
            self._write(pkt)
        if until_s is None:
            self._flush()

    def _take(self):
        """The next packet to copy (retimed), or None: the input's end, or nothing more in the feed now."""
        if self._feed is not None:
            while (pkt := self._feed.get()) is not None:
                entry = self.entries.get(pkt.stream.index)
                if entry is not None and entry[2] != "attachment":
                    return pkt
            return None
        while self._demux is not None:
            try:
                pkt = next(self._demux)
            except StopIteration:
                self._demux = None
                break
            except av.FFmpegError:
                log.warning("warning: the input's audio / other streams end early (damaged file?)")
                self._demux = None
                break
            if pkt.dts is None and pkt.pts is None and not (pkt.size and is_cover(pkt.stream)):
                continue  # the demuxer's flush packets
            if self._retimer.retime(pkt):  # else before the trimmed start (-ss)
                return pkt
        return None

    def stop(self) -> None:
        """The rest of the input is past the trimmed end (-t / --frames): drop it, flush the encoders."""
        self._demux, self._feed, self._pending = None, None, None
        self._flush()

    def _write(self, pkt) -> None:
        _ist, ost, how, conv = self.entries[pkt.stream.index]
        if how == "copy":
            if pkt.pts is None and pkt.dts is None:  # a cover picture's one packet
                pkt.pts = pkt.dts = 0
            if conv is not None:
                data = conv(bytes(pkt))
                new = av.Packet(data)
                new.pts, new.dts, new.duration, new.time_base = pkt.pts, pkt.dts, pkt.duration, pkt.time_base
                pkt = new
            pkt.stream = ost
            try:
                self.oc.mux(pkt)
            except (av.ArgumentError, av.InvalidDataError, ValueError):
                self._damaged()
                return
            self.packets += 1
            return
        try:
            decoded = pkt.decode()
        except av.FFmpegError:
            self._damaged()
            return
        for af in decoded:
            af.pts = None
            for opkt in ost.encode(af):
                self.oc.mux(opkt)
                self.packets += 1

    def _flush(self) -> None:
        for _ist, ost, how, _conv in self.entries.values():
            if how == "encode":
                for opkt in ost.encode(None):
                    self.oc.mux(opkt)
                    self.packets += 1

    def _cover_bytes(self, st) -> bytes:
        """The one packet of a cover picture (read before the copy starts; then back to 0)."""
        if self._feed is not None:  # demuxed already (a container returns its cover pictures first)
            data = self._feed.covers.get(st.index)
            if data is None:
                raise ValueError("the cover picture has no data")
            return data
        data = None
        try:
            for pkt in self.ic.demux(st):
                if pkt.size:
                    data = bytes(pkt)
                    break
        finally:
            self.ic.seek(0)
        if data is None:
            raise ValueError("the cover picture has no data")
        return data
