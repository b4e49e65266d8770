"""Media fidelity, images (issue 11): EXIF (orientation applied once, reset to 1), ICC, XMP,
16-bit PNG / TIFF, grey, alpha, --quality, animated GIF / WebP, truncated files. Images are
synthesized with numpy + Pillow / OpenCV; checked by reading the outputs back."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageSequence

from tests.e2e.conftest import FAST
from tests.media import pattern

pytestmark = pytest.mark.timeout(120)

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>harbour</dc:title></rdf:Description></rdf:RDF></x:xmpmeta>')


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation: int) -> Image.Exif:
    ex = Image.Exif()
    ex[0x0112] = orientation
    ex[0x010F] = "TestCam"  # Make
    ex[0x0132] = "2024:05:06 07:08:09"  # DateTime
    return ex


def _photo(w=96, h=64) -> np.ndarray:
    img = pattern(3, w, h, level=0.3)
    img[:8, :16] = (250, 20, 20)  # a red mark in the top-left corner of the stored picture
    return img


def _run(cli_main, inp, out, *extra):
    code, err = cli_main([inp, "-o", out, *FAST, *extra])
    assert code == 0, err
    return err


@pytest.mark.parametrize("ext, fmt", [(".jpg", "JPEG"), (".png", "PNG"), (".webp", "WEBP")])
def test_exif_orientation_icc_xmp_kept(tmp_path, cli_main, ext, fmt):
    inp = tmp_path / f"in{ext}"
    kw = {"exif": _exif(6).tobytes(), "icc_profile": _icc()}
    if fmt == "PNG":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        kw["pnginfo"] = info
    else:
        kw["xmp"] = XMP
    Image.fromarray(_photo()).save(inp, fmt, quality=95, **kw) if fmt != "PNG" else Image.fromarray(_photo()).save(inp, fmt, **kw)
    out = tmp_path / f"out{ext}"
    _run(cli_main, inp, out)
    im = Image.open(out)
    ex = im.getexif()
    assert ex.get(0x0112) == 1  # orientation applied to the pixels, tag reset
    assert ex.get(0x010F) == "TestCam" and ex.get(0x0132) == "2024:05:06 07:08:09"
    assert im.info.get("icc_profile") == Image.open(inp).info["icc_profile"]
    raw = out.read_bytes()
    assert b"<dc:title>harbour</dc:title>" in raw  # XMP packet carried
    a = np.asarray(im.convert("RGB"))
    assert a.shape[:2] == (96, 64)  # orientation 6: rotated a quarter turn, once
    # the red mark of the stored top-left corner is now top-right (90 degrees clockwise)
    assert a[:16, -8:, 0].mean() > 150 and a[:16, -8:, 2].mean() < 120


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_stays_16bit(tmp_path, cli_main, ext):
    ramp = np.linspace(3000, 20000, 160).astype(np.uint16)  # dark: more levels than 8 bits hold
    img = np.stack([np.tile(ramp, (40, 1))] * 3, axis=-1)
    img[..., 2] //= 2
    inp, out = tmp_path / f"in{ext}", tmp_path / f"out{ext}"
    cv2.imwrite(str(inp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    _run(cli_main, inp, out)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == (40, 160, 3)
    assert not np.array_equal(got, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    row = got[20, :, 1]
    assert len(np.unique(row)) > 100 and (np.unique(row) % 257 != 0).mean() > 0.9  # not 8-bit levels


def _camera_exif(orientation: int) -> Image.Exif:
    """IFD0 tags a camera writes plus the Exif and GPS sub-IFDs."""
    ex = _exif(orientation)
    ex[0x0110] = "Model T"  # Model
    ex[0x0131] = "FirmWare 2.1"  # Software
    ex[0x013B] = "A. Photographer"  # Artist
    ex[0x8298] = "(c) 2024 A. Photographer"  # Copyright
    from PIL.TiffImagePlugin import IFDRational

    ex.get_ifd(0x8769).update({0x829A: IFDRational(1, 250), 0x9003: "2024:05:06 07:08:09", 0x8827: 400})  # ExposureTime, DateTimeOriginal, ISO
    ex.get_ifd(0x8825).update({1: "N", 2: (IFDRational(52), IFDRational(30), IFDRational(31, 2))})  # GPS latitude
    return ex


def _assert_camera_metadata(im: Image.Image, icc: bytes) -> None:
    from PIL.TiffImagePlugin import IFDRational

    ex = im.getexif()
    assert ex.get(0x0112, 1) == 1  # orientation applied once, reset (Pillow drops a TIFF's tag when it applies it)
    for tag, value in {0x010F: "TestCam", 0x0110: "Model T", 0x0132: "2024:05:06 07:08:09", 0x0131: "FirmWare 2.1",
                       0x013B: "A. Photographer", 0x8298: "(c) 2024 A. Photographer"}.items():
        assert ex.get(tag) == value, (hex(tag), ex.get(tag))
    sub = ex.get_ifd(0x8769)
    assert sub.get(0x829A) == IFDRational(1, 250) and sub.get(0x9003) == "2024:05:06 07:08:09" and sub.get(0x8827) == 400
    assert ex.get_ifd(0x8825).get(2) == (52.0, 30.0, 15.5)
    assert im.info.get("icc_profile") == icc
    assert bytes(im.tag_v2.get(700)) == XMP


@pytest.mark.parametrize("alpha", [False, True])
def test_16bit_tiff_keeps_exif_icc_xmp(tmp_path, cli_main, alpha):
    """A 16-bit RGB(A) TIFF stays 16-bit (read back by OpenCV) and keeps its EXIF (IFD0, Exif
    and GPS sub-IFDs; orientation applied once and reset), ICC profile and XMP (read back by
    Pillow). The input is written by the project's own TIFF writer and checked by both readers
    first; the grey test below starts from a file Pillow wrote."""
    from psenet_stream.io.images import ImageMeta, _tiff16

    ramp = np.linspace(3000, 20000, 96).astype(np.uint16)
    rgb = np.stack([np.tile(ramp, (64, 1))] * 3, axis=-1)
    rgb[..., 2] //= 2
    rgb[:8, :16] = (60000, 4000, 4000)  # a red mark in the top-left corner of the stored picture
    a = np.dstack([rgb, np.tile(np.arange(96, dtype=np.uint16) * 600, (64, 1))]) if alpha else rgb
    icc = _icc()
    inp, out = tmp_path / "in.tif", tmp_path / "out.tif"
    inp.write_bytes(_tiff16(a, ImageMeta(exif=_camera_exif(6).tobytes(), icc=icc, xmp=XMP)))
    back = cv2.imdecode(np.frombuffer(inp.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)  # OpenCV applies the orientation
    bgr = cv2.cvtColor(a, cv2.COLOR_RGBA2BGRA if alpha else cv2.COLOR_RGB2BGR)
    assert back.dtype == np.uint16 and np.array_equal(back, np.rot90(bgr, -1))
    assert Image.open(inp).getexif().get(0x0112) == 6
    _run(cli_main, inp, out)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == (96, 64, 4 if alpha else 3)  # rotated a quarter turn, once
    got = cv2.cvtColor(got, cv2.COLOR_BGRA2RGBA if alpha else cv2.COLOR_BGR2RGB)
    assert got[:16, -8:, 0].mean() > 40000 and got[:16, -8:, 2].mean() < 30000  # the mark is now top-right
    assert (got[..., :3].astype(int).mean()) > rgb.astype(int).mean() + 1000  # enhanced (brighter)
    assert (np.unique(got[48, :, 1]) % 257 != 0).mean() > 0.9  # not 8-bit levels
    if alpha:
        assert np.array_equal(got[..., 3], np.rot90(a[..., 3], -1))  # alpha untouched (rotated with the picture)
    im = Image.open(out)
    assert im.mode == ("RGBA" if alpha else "RGB") and im.tag_v2[258] == (16,) * (4 if alpha else 3)
    _assert_camera_metadata(im, icc)


@pytest.mark.parametrize("shape", [(700, 600, 4), (300, 5000, 3), (1, 40000, 3)])
def test_16bit_tiff_writer_many_strips(shape):
    """The writer's strips (about 256 KiB each, compressed in parallel past 8; one row each
    when a row is larger) read back exactly by OpenCV, with the EXIF read back by Pillow."""
    from psenet_stream.io.images import ImageMeta, _tiff16

    a = np.random.default_rng(1).integers(0, 65536, shape, dtype=np.uint16)
    a[: shape[0] // 2] //= 7  # some smooth, some noisy content
    data = _tiff16(a, ImageMeta(exif=_camera_exif(1).tobytes(), icc=_icc()))
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back, cv2.cvtColor(a, cv2.COLOR_RGBA2BGRA if shape[2] == 4 else cv2.COLOR_RGB2BGR))
    im = Image.open(io.BytesIO(data))
    assert len(im.tag_v2[273]) == len(im.tag_v2[279]) > (8 if shape[0] > 1 else 0)
    assert im.getexif().get_ifd(0x8769).get(0x8827) == 400


def test_16bit_grey_tiff_keeps_exif_icc_xmp(tmp_path, cli_main):
    inp, out = tmp_path / "in.tif", tmp_path / "out.tif"
    g = np.tile(np.linspace(2000, 30000, 64).astype(np.uint16), (32, 1))
    icc = _icc()
    ex = _camera_exif(1)
    ex[700] = XMP  # Pillow's TIFF writer takes the XMP tag from the EXIF (tiffinfo would replace it)
    Image.fromarray(g).save(inp, exif=ex.tobytes(), icc_profile=icc)
    assert Image.open(inp).mode == "I;16" and Image.open(inp).getexif().get_ifd(0x8769).get(0x9003) == "2024:05:06 07:08:09"
    _run(cli_main, inp, out)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == (32, 64) and got.mean() > g.mean() + 1000
    im = Image.open(out)
    assert im.mode == "I;16"
    _assert_camera_metadata(im, icc)


def test_16bit_png_keeps_icc(tmp_path, cli_main):
    inp, out = tmp_path / "in.png", tmp_path / "out.png"
    g = np.tile(np.linspace(2000, 30000, 64).astype(np.uint16), (32, 1))
    Image.fromarray(g).save(inp, icc_profile=_icc())
    assert Image.open(inp).mode == "I;16"
    _run(cli_main, inp, out)
    im = Image.open(out)
    assert im.mode.startswith("I;16")  # still 16-bit grey
    assert im.info.get("icc_profile") == Image.open(inp).info["icc_profile"]


def test_gray_stays_gray_and_alpha_is_untouched(tmp_path, cli_main):
    g = pattern(0, 80, 60, 0.3)[..., 1]
    inp = tmp_path / "g.png"
    Image.fromarray(g, "L").save(inp)
    out = tmp_path / "g_out.png"
    _run(cli_main, inp, out)
    im = Image.open(out)
    assert im.mode == "L" and not np.array_equal(np.asarray(im), g)
    rgba = np.dstack([pattern(0, 80, 60, 0.3), np.tile(np.arange(80, dtype=np.uint8) * 3, (60, 1))])
    inp, out = tmp_path / "a.png", tmp_path / "a_out.png"
    Image.fromarray(rgba, "RGBA").save(inp)
    _run(cli_main, inp, out)
    b = np.asarray(Image.open(out))
    assert b.shape == (60, 80, 4)
    assert np.array_equal(b[..., 3], rgba[..., 3])  # alpha passed through unchanged
    assert not np.array_equal(b[..., :3], rgba[..., :3])  # the picture was enhanced


@pytest.mark.parametrize("ext", [".jpg", ".webp"])
def test_quality_sets_jpeg_and_webp_size(tmp_path, cli_main, ext):
    inp = tmp_path / "q.png"
    Image.fromarray(pattern(0, 256, 192, 0.4)).save(inp)
    sizes = {}
    for q in (30, 95):
        out = tmp_path / f"q{q}{ext}"
        _run(cli_main, inp, out, "--quality", q)
        sizes[q] = out.stat().st_size
    assert sizes[30] < 0.7 * sizes[95]
    code, err = cli_main([inp, "-o", tmp_path / "x.jpg", "--quality", "0", *FAST])
    assert code == 2 and "1<=x<=100" in err.replace(" ", "")


@pytest.mark.parametrize("ext, fmt", [(".gif", "GIF"), (".webp", "WEBP")])
def test_animation_every_frame_enhanced(tmp_path, cli_main, ext, fmt):
    frames = [Image.fromarray(pattern(i * 5, 64, 48, 0.3)) for i in range(5)]
    inp, out = tmp_path / f"anim{ext}", tmp_path / f"anim_out{ext}"
    frames[0].save(inp, fmt, save_all=True, append_images=frames[1:], duration=[40, 60, 80, 100, 120], loop=3, lossless=True)
    _run(cli_main, inp, out)
    src, res = Image.open(inp), Image.open(out)
    assert res.n_frames == src.n_frames == 5
    assert res.info.get("loop") == 3
    durs = []
    for f in ImageSequence.Iterator(res):
        f.load()  # WebP sets a frame's duration when it is loaded
        durs.append(f.info.get("duration"))
    assert durs == [40, 60, 80, 100, 120]
    for a, b in zip(ImageSequence.Iterator(Image.open(inp)), ImageSequence.Iterator(Image.open(out))):
        assert np.asarray(b.convert("RGB")).astype(int).mean() > np.asarray(a.convert("RGB")).astype(int).mean() + 2  # each frame brightened


@pytest.mark.parametrize("ext, fmt", [(".jpg", "JPEG"), (".png", "PNG")])
def test_truncated_image_is_an_error(tmp_path, cli_main, ext, fmt):
    b = io.BytesIO()
    Image.fromarray(pattern(0, 200, 150, 0.4)).save(b, fmt)
    inp = tmp_path / f"cut{ext}"
    inp.write_bytes(b.getvalue()[: len(b.getvalue()) * 2 // 3])
    out = tmp_path / f"cut_out{ext}"
    code, err = cli_main([inp, "-o", out, *FAST])
    assert code != 0 and "truncated" in err and "Traceback" not in err
    assert not out.exists()
