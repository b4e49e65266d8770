"""Still and animated images with what they carry: decoded with Pillow (metadata, animation,
truncation checks) and OpenCV (16-bit pixels), written back with the same.

    decode(data)  -> Decoded(frames, meta)       frames: (H, W, 3) uint8 or uint16 RGB each
    encode(ext, rgb, meta, index, quality) -> bytes

What is kept, and how:

- EXIF: the orientation is applied to the pixels once (as viewers do) and the tag is reset
  to 1 (top-left) in the EXIF written back, so the output is not rotated a second time; the
  other tags (camera, date, GPS) are kept.
- ICC profile and XMP: copied as they are (JPEG, PNG, WebP, TIFF; 16-bit PNG by chunks, 16-bit
  TIFF written by _tiff16 with the EXIF, ICC and XMP tags in its IFD).
- Bit depth: 16-bit PNG / TIFF stay 16-bit (the enhancer takes uint16 and applies the curve
  in float, curve.apply_float); 8-bit stays 8-bit.
- Grayscale stays grayscale (the enhanced RGB is averaged back to one channel).
- Alpha is set aside when decoding and put back unchanged when encoding (JPEG has none:
  the alpha is then dropped with a warning).
- Animated GIF / WebP: every frame is decoded and enhanced; the frame durations and the
  loop count are written back.
- A truncated or damaged file is an error (Pillow refuses to finish it), never a picture
  half filled with grey.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger("psenet_stream")

ORIENTATION = 0x0112
_XMP_PNG_KEY = "XML:com.adobe.xmp"
_SIXTEEN_BIT_FORMATS = (".png", ".tif", ".tiff")
# TIFF tags that describe a file's own layout (TIFF 6.0 numbers), with its ICC (34675) and XMP
# (700): taken out of a TIFF input's EXIF, never copied over the ones _tiff16 writes.
_TIFF_STRUCTURE = {
    254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320, 322, 323, 324, 325,
    330, 338, 339, 340, 341, 513, 514, 530, 531, 532, 700, 34675,
}
_PIL_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


class ImageDecodeError(ValueError):
    """Why an image could not be read (a short reason, for the caller's message)."""


@dataclass
class ImageMeta:
    """What an image carries besides its pixels (shared by the frames of an animation)."""

    format: str = ""  # Pillow's name: JPEG, PNG, WEBP, GIF, TIFF, BMP
    exif: bytes | None = None  # orientation already reset to 1
    icc: bytes | None = None
    xmp: bytes | None = None
    gray: bool = False
    bits: int = 8
    alphas: list = field(default_factory=list)  # per frame: (H, W) alpha of the frame's dtype, or None
    durations: list = field(default_factory=list)  # animations: ms per frame
    loop: int | None = None
    frames: int = 1

    @property
    def animated(self) -> bool:
        return self.frames > 1


@dataclass
class Decoded:
    frames: list  # (H, W, 3) uint8 / uint16 RGB, display orientation
    meta: ImageMeta


def _orient(a: np.ndarray, o: int) -> np.ndarray:
    """Apply EXIF orientation ``o`` (1..8) to an (H, W[, C]) array, as Pillow's exif_transpose."""
    if o == 2:
        return a[:, ::-1]
    if o == 3:
        return a[::-1, ::-1]
    if o == 4:
        return a[::-1]
    if o == 5:
        return np.swapaxes(a, 0, 1)
    if o == 6:
        return np.rot90(a, -1)
    if o == 7:
        return np.swapaxes(a, 0, 1)[::-1, ::-1]
    if o == 8:
        return np.rot90(a, 1)
    return a


def _xmp_of(im) -> bytes | None:
    x = im.info.get("xmp") or im.info.get(_XMP_PNG_KEY)
    if x is None and hasattr(im, "tag_v2"):
        x = im.tag_v2.get(700)
    if isinstance(x, str):
        x = x.encode()
    return bytes(x) if x else None


def decode(data: bytes) -> Decoded:
    """Decode an image held in memory; raises ImageDecodeError with a short reason."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    from psenet_stream import MAX_IMAGE_PIXELS

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():  # over the budget is refused just below, in one line: not Pillow's warning too
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:  # Pillow itself only refuses twice its limit
            raise Image.DecompressionBombError("too many pixels")
        im.load()  # a truncated file raises here ("image file is truncated")
    except Image.DecompressionBombError:
        raise ImageDecodeError(f"larger than {MAX_IMAGE_PIXELS / 1e6:g} megapixels") from None
    except UnidentifiedImageError:
        return _decode_cv2_only(data)
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageDecodeError(f"damaged or truncated ({str(e).strip() or type(e).__name__})") from None
    meta = ImageMeta(format=im.format or "", icc=im.info.get("icc_profile") or None, xmp=_xmp_of(im))
    if im.mode in ("CMYK", "LAB", "YCbCr") and meta.icc:  # converted to RGB: its profile no longer describes the pixels
        log.info("note: the %s image's ICC profile is not carried to the RGB output", im.mode)
        meta.icc = None
    exif = im.getexif()
    orientation = int(exif.get(ORIENTATION, 1) or 1)
    if im.format == "TIFF":  # a TIFF's EXIF is its whole IFD0: keep the descriptive tags only
        for tag in _TIFF_STRUCTURE & set(exif):
            del exif[tag]
    if len(exif):
        if orientation != 1:
            exif[ORIENTATION] = 1
        meta.exif = exif.tobytes()
    n = getattr(im, "n_frames", 1) or 1
    meta.frames = n
    frames = []
    if n > 1:  # animated GIF / WebP (a multi-page TIFF too: every page)
        meta.loop = im.info.get("loop")
        for fr in ImageSequence.Iterator(im):
            rgb, alpha, gray = _pixels_pil(fr)  # loads the frame: WebP sets its duration then
            meta.durations.append(int(fr.info.get("duration", im.info.get("duration", 100)) or 100))
            frames.append(_orient(rgb, orientation))
            meta.alphas.append(None if alpha is None else _orient(alpha, orientation))
        meta.gray = False  # palette animations: written back as RGB(A)
        return Decoded([np.ascontiguousarray(f) for f in frames], meta)
    deep = _deep_pixels(data) if _sixteen_bit(im, data) else None
    if deep is not None:
        rgb, alpha, gray = deep
    else:
        rgb, alpha, gray = _pixels_pil(im)
    meta.gray, meta.bits = gray, 16 if rgb.dtype == np.uint16 else 8
    meta.alphas = [None if alpha is None else np.ascontiguousarray(_orient(alpha, orientation))]
    return Decoded([np.ascontiguousarray(_orient(rgb, orientation))], meta)


def _sixteen_bit(im, data: bytes) -> bool:
    """A 16-bit PNG (IHDR bit depth) or TIFF (BitsPerSample): Pillow would reduce it to 8 bits."""
    if im.format == "PNG":
        return len(data) > 24 and data[24] == 16
    if im.format == "TIFF":
        bps = im.tag_v2.get(258)
        bps = bps if isinstance(bps, (tuple, list)) else (bps,)
        return any(b == 16 for b in bps if b)
    return False


def _decode_cv2_only(data: bytes) -> Decoded:
    """Formats only OpenCV reads: pixels, no metadata."""
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:
        raise ImageDecodeError(f"larger than the pixel budget ({str(e).strip().splitlines()[-1]})" if "MAX_IMAGE_PIXELS" in str(e) else "damaged or not a supported image") from None
    if bgr is None:
        raise ImageDecodeError("damaged or not a supported image")
    return Decoded([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)], ImageMeta(alphas=[None]))


def _pixels_pil(im) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(RGB, alpha or None, gray) of a Pillow image, 8-bit (16-bit for I;16 grey)."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        g = np.asarray(im)
        g = g.astype(np.uint16) if mode.startswith("I;16") else np.clip(g, 0, 65535).astype(np.uint16)
        return np.repeat(g[..., None], 3, axis=2), None, True
    if mode in ("L", "1"):
        g = np.asarray(im.convert("L"))
        return np.repeat(g[..., None], 3, axis=2), None, True
    if mode == "LA":
        a = np.asarray(im)
        return np.repeat(a[..., :1], 3, axis=2), a[..., 1].copy(), True
    has_alpha = mode in ("RGBA", "PA", "LA", "La", "RGBa") or (mode == "P" and "transparency" in im.info)
    a = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    if has_alpha:
        return a[..., :3].copy(), a[..., 3].copy(), False
    return a, None, False


def _deep_pixels(data: bytes):
    """16-bit PNG / TIFF pixels through OpenCV (Pillow has no 16-bit RGB); None when 8-bit."""
    a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if a is None or a.dtype != np.uint16:
        return None
    if a.ndim == 2:
        return np.repeat(a[..., None], 3, axis=2), None, True
    if a.shape[2] == 2:
        return np.repeat(a[..., :1], 3, axis=2), a[..., 1].copy(), True
    if a.shape[2] == 4:
        return cv2.cvtColor(a, cv2.COLOR_BGRA2RGB), a[..., 3].copy(), False
    return cv2.cvtColor(a, cv2.COLOR_BGR2RGB), None, False


# --- writing --------------------------------------------------------------------------------
def _to8(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.uint8 else ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _to_gray(rgb: np.ndarray) -> np.ndarray:
    """The enhanced grey picture: the mean of the three channels (equal for a grey input up
    to the per-channel gamma), rounded, in the input's dtype."""
    m = rgb.astype(np.float32).mean(axis=2) + 0.5
    return m.astype(rgb.dtype)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _png_with_metadata(png: bytes, meta: ImageMeta) -> bytes:
    """Insert iCCP / eXIf / iTXt (XMP) chunks after IHDR of a PNG written by OpenCV."""
    chunks = b""
    if meta.icc:
        chunks += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(meta.icc))
    if meta.exif:
        ex = meta.exif[6:] if meta.exif.startswith(b"Exif\x00\x00") else meta.exif
        chunks += _png_chunk(b"eXIf", ex)
    if meta.xmp:
        chunks += _png_chunk(b"iTXt", _XMP_PNG_KEY.encode() + b"\x00\x00\x00\x00\x00" + meta.xmp)
    end_ihdr = 8 + 8 + 13 + 4
    return png[:end_ihdr] + chunks + png[end_ihdr:]


_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
_STRIP_BYTES = 256 * 1024  # uncompressed bytes per strip (a few rows; one row at least)
_DEFLATE_LEVEL = 1  # 24 MP RGB: 1.4 s and the size of OpenCV's LZW; level 6 saves 12 % in 7x the time


def _tiff16(a: np.ndarray, meta: ImageMeta) -> bytes:
    """A little-endian 16-bit TIFF of ``a`` ((H, W) or (H, W, C) uint16: grey, grey + alpha,
    RGB or RGBA) with the input's EXIF (IFD0 tags and the Exif / GPS sub-IFDs), ICC profile
    and XMP. Pillow cannot write 16-bit RGB and OpenCV writes no metadata, so the file is
    assembled here: header, the pixel strips (deflate with the horizontal predictor), then
    IFD0 serialised by Pillow's ImageFileDirectory_v2 (which lays out the sub-IFDs and values
    too), StripOffsets patched in afterwards."""
    a = a if a.ndim == 3 else a[..., None]
    h, w, c = a.shape
    gray = c <= 2
    row_bytes = w * c * 2
    rows = max(1, min(h, _STRIP_BYTES // row_bytes))
    diff = a.astype("<u2")  # the predictor (TIFF 6.0, section 14): each sample minus the one to its left
    diff[:, 1:] -= a[:, :-1]
    chunks = [diff[y : y + rows].tobytes() for y in range(0, h, rows)]
    if len(chunks) < 8:
        strips = [zlib.compress(c, _DEFLATE_LEVEL) for c in chunks]
    else:  # zlib lets go of the GIL: the strips of a large picture are compressed in parallel
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            strips = list(pool.map(zlib.compress, chunks, [_DEFLATE_LEVEL] * len(chunks)))
    pixels = b"".join(s + b"\x00" * (len(s) & 1) for s in strips)  # each strip on a word boundary
    ifd_at = 8 + len(pixels)
    layout = ((w, h, c, gray, rows), [len(s) for s in strips])
    try:
        table = bytearray(_tiff_ifd(*layout, meta, with_exif=True).tobytes(ifd_at))
    except (ValueError, TypeError, struct.error) as e:  # a tag Pillow cannot write back: the rest is kept
        log.warning("warning: the EXIF of this image cannot be written to TIFF (%s); ICC and XMP are kept", e)
        table = bytearray(_tiff_ifd(*layout, meta, with_exif=False).tobytes(ifd_at))
    if ifd_at + len(table) > 0xFFFFFFFF:
        raise ValueError("too large for a TIFF file (4 GiB); write a .png")
    offsets, at = [], 8
    for s in strips:
        offsets.append(at)
        at += len(s) + (len(s) & 1)
    _patch_longs(table, ifd_at, 273, offsets)
    return b"II*\x00" + struct.pack("<I", ifd_at) + pixels + bytes(table)


def _tiff_ifd(shape: tuple, sizes: list[int], meta: ImageMeta, *, with_exif: bool):
    """IFD0 of _tiff16's file: the image tags for ``shape`` (w, h, samples, grey, rows per
    strip) and strips of ``sizes`` bytes, the input's EXIF (IFD0 tags and sub-IFDs), ICC, XMP."""
    from PIL import Image, TiffImagePlugin, TiffTags

    w, h, c, gray, rows = shape
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=b"II*\x00\x08\x00\x00\x00")
    if meta.exif and with_exif:
        ex = Image.Exif()
        ex.load(meta.exif)
        for tag, value in ex.items():
            if tag in _TIFF_STRUCTURE:  # the input's own layout (a TIFF's EXIF is its whole IFD0)
                continue
            if tag in (_EXIF_IFD, _GPS_IFD):
                value = dict(ex.get_ifd(tag))
                if tag == _EXIF_IFD and _INTEROP_IFD in value:
                    value[_INTEROP_IFD] = dict(ex.get_ifd(_INTEROP_IFD))
                if not value:
                    continue
            ifd[tag] = value
    for tag, typ, value in (
        (256, TiffTags.LONG, w),
        (257, TiffTags.LONG, h),
        (258, TiffTags.SHORT, (16,) * c),
        (259, TiffTags.SHORT, 8),  # deflate (Adobe)
        (262, TiffTags.SHORT, 1 if gray else 2),  # BlackIsZero / RGB
        (273, TiffTags.LONG, (0,) * len(sizes)),  # patched by _tiff16
        (277, TiffTags.SHORT, c),
        (278, TiffTags.LONG, rows),
        (279, TiffTags.LONG, tuple(sizes)),
        (284, TiffTags.SHORT, 1),  # chunky
        (317, TiffTags.SHORT, 2),  # horizontal differencing
        (339, TiffTags.SHORT, (1,) * c),  # unsigned integers
    ):
        ifd.tagtype[tag] = typ
        ifd[tag] = value
    if c in (2, 4):
        ifd.tagtype[338] = TiffTags.SHORT
        ifd[338] = 2  # unassociated alpha: passed through as it came
    if meta.icc:
        ifd.tagtype[34675] = TiffTags.UNDEFINED
        ifd[34675] = meta.icc
    if meta.xmp:
        ifd.tagtype[700] = TiffTags.BYTE
        ifd[700] = meta.xmp
    return ifd


def _patch_longs(table: bytearray, base: int, tag: int, values: list[int]) -> None:
    """Overwrite the LONG values of ``tag`` in a little-endian IFD serialised at file offset
    ``base`` (inline when there is one value, else at the offset the entry holds)."""
    (n,) = struct.unpack_from("<H", table, 0)
    for i in range(n):
        t, typ, count, value = struct.unpack_from("<HHII", table, 2 + 12 * i)
        if t == tag:
            assert typ == 4 and count == len(values), (typ, count)
            at = 2 + 12 * i + 8 if count == 1 else value - base
            struct.pack_into(f"<{count}I", table, at, *values)
            return
    raise AssertionError(f"tag {tag} not in the IFD")


def encode(ext: str, frames: list[np.ndarray], meta: ImageMeta | None, *, quality: int | None = None, name: str = "") -> bytes:
    """Encode enhanced RGB frames (one, or every frame of an animation) as ``ext`` with the
    input's metadata (``meta``; None: nothing to carry). Raises ValueError when the format
    cannot be written."""
    from PIL import Image, PngImagePlugin

    meta = meta or ImageMeta(alphas=[None] * len(frames))
    ext = ext.lower()
    fmt = _PIL_FORMAT.get(ext)
    alphas = meta.alphas + [None] * (len(frames) - len(meta.alphas))
    deep = frames[0].dtype == np.uint16
    if deep and ext in _SIXTEEN_BIT_FORMATS and len(frames) == 1:  # 16-bit out: OpenCV (PNG) or _tiff16
        rgb, alpha = frames[0], alphas[0]
        a = _to_gray(rgb) if meta.gray else rgb
        if alpha is not None:
            a = np.dstack([a, alpha.astype(np.uint16)])
        if ext != ".png":  # written here: OpenCV's TIFF writer takes no metadata
            return _tiff16(a, meta)
        if not meta.gray:
            a = cv2.cvtColor(a, cv2.COLOR_RGBA2BGRA if alpha is not None else cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png", a)
        if not ok:
            raise ValueError(f"cannot encode a 16-bit {ext} image")
        return _png_with_metadata(buf.tobytes(), meta)
    if fmt is None:  # formats only OpenCV writes
        ok, buf = cv2.imencode(ext, cv2.cvtColor(_to8(frames[0]), cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"cannot encode {ext}")
        return buf.tobytes()
    pil_frames = []
    dropped_alpha = False
    for rgb, alpha in zip(frames, alphas):
        rgb8 = _to8(rgb)
        if meta.gray:
            g = _to_gray(rgb8)
            im = Image.fromarray(g, "L") if alpha is None or fmt == "JPEG" else Image.fromarray(np.dstack([g, _to8(alpha)]), "LA")
        else:
            im = Image.fromarray(rgb8, "RGB") if alpha is None or fmt == "JPEG" else Image.fromarray(np.dstack([rgb8, _to8(alpha)]), "RGBA")
        dropped_alpha |= alpha is not None and fmt == "JPEG"
        pil_frames.append(im)
    if dropped_alpha:
        log.warning("warning: %s: JPEG has no transparency; the alpha channel is left out (write .png or .webp to keep it)", name)
    kw: dict = {}
    if meta.icc and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["icc_profile"] = meta.icc
    if meta.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["exif"] = meta.exif
    if meta.xmp:
        if fmt in ("JPEG", "WEBP"):
            kw["xmp"] = meta.xmp
        elif fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_itxt(_XMP_PNG_KEY, meta.xmp.decode("utf-8", "replace"))
            kw["pnginfo"] = info
        elif fmt == "TIFF":
            kw["tiffinfo"] = {700: meta.xmp}
    if fmt in ("JPEG", "WEBP"):
        kw["quality"] = 95 if quality is None else int(quality)
    if fmt == "JPEG" and pil_frames[0].mode == "LA":
        pil_frames = [f.convert("L") for f in pil_frames]
    if len(pil_frames) > 1:
        if fmt not in ("GIF", "WEBP", "PNG", "TIFF"):
            raise ValueError(f"{ext} holds one picture; write the animation as .gif or .webp")
        kw.update(save_all=True, append_images=pil_frames[1:], duration=meta.durations or 100, loop=0 if meta.loop is None else meta.loop)
        if fmt == "WEBP":
            kw.setdefault("lossless", quality is None)
        if fmt == "GIF":
            kw["disposal"] = 2
    out = io.BytesIO()
    pil_frames[0].save(out, fmt, **kw)
    return out.getvalue()
