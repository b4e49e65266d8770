"""Evaluation: synthetic exposure errors on well-exposed photos, and paired folders.

Synthetic protocol (``evaluate_synthetic``): every photo is read as RGB, resized so its long
side is at most ``long_side`` pixels (INTER_AREA; bounded cost, and the same pixels for every
method), then each exposure error in ``SUBSETS`` is applied in linear light (ops.expose:
sRGB -> linear, x 2**EV, clip at white, -> sRGB, rounded to 8 bits, as a camera would store
it). Each method maps the 8-bit input to an 8-bit output, which is scored against the
original photo: PSNR, SSIM, the clipped-pixel fraction and the paper's no-reference score
(psenet_stream.evaluation.metrics). Subset numbers are means over (photo, EV) pairs; "all" pools both
subsets. Everything is deterministic: sorted file order, no randomness.

Paired protocol (``evaluate_paired``): DIR/input and DIR/gt, matched by file stem (an input
``a_3.jpg`` also matches ``gt/a.png``, the SICE/LOL multi-exposure naming), both resized to
the same bounded size.

Methods are plain callables uint8 (H, W, 3) -> uint8 (H, W, 3): ``identity``, ``clahe`` and
``enhancer_method`` (any weight file; official .pth checkpoints are imported on the fly).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from psenet_stream import ops
from psenet_stream.curve import shrink_to_long_side
from psenet_stream.errors import InputError
from psenet_stream.evaluation import metrics
from psenet_stream.io import specs

log = logging.getLogger("psenet_stream")

UNDER_EVS = (-2.5, -1.5, -1.0)
OVER_EVS = (1.0, 1.5, 2.0)
SUBSETS: dict[str, tuple[float, ...]] = {"none": (0.0,), "under": UNDER_EVS, "over": OVER_EVS}
# "none" is the do-no-harm group: the untouched photo is the input and the reference; it is
# reported on its own and left out of "all" (which pools the exposure errors)
FAMILIES = ("linear", "camera")
DEFAULT_LONG_SIDE = 512
METRIC_KEYS = ("psnr", "ssim", "dy", "clipped", "nr_score")

__all__ = [
    "OVER_EVS",
    "SUBSETS",
    "UNDER_EVS",
    "Method",
    "as_project_weights",
    "clahe_method",
    "enhancer_method",
    "evaluate_paired",
    "evaluate_synthetic",
    "find_pairs",
    "identity_method",
    "list_images",
    "load_photo",
    "official_checkpoints",
    "synthesize",
    "to_markdown",
]


# --- methods ------------------------------------------------------------------------------


@dataclass
class Method:
    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    info: dict = field(default_factory=dict)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self.fn(img)


def identity_method() -> Method:
    return Method("identity", lambda x: x, {"kind": "identity"})


def clahe_method(clip_limit: float = 2.0, tiles: int = 8) -> Method:
    """CLAHE on the L channel of CIELAB (OpenCV), the classic non-learned baseline."""
    clahe = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles))

    def fn(img: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
        lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)

    return Method("clahe", fn, {"kind": "clahe", "clip_limit": clip_limit, "tiles": tiles})


def _is_official(path: Path) -> bool:
    if path.suffix.lower() == ".pth":
        return True
    from psenet_stream.weights_io import _looks_like_lightning

    return _looks_like_lightning(path)


def as_project_weights(path: str | Path, cache_dir: str | Path) -> Path:
    """A project weight file for ``path``: itself, or an official checkpoint imported into
    ``cache_dir`` (a temporary folder: imported official weights are never written into
    the repository)."""
    from psenet_stream.weights_io import import_official

    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights not found: {path}", "pass a .pt written by psenet-stream or an official .pth checkpoint")
    if not _is_official(path):
        return path
    out = Path(cache_dir) / f"{path.stem}-imported.pt"
    if not out.exists():
        import_official(path, out)
    return out


def enhancer_method(
    weights: str | Path | None,
    name: str,
    *,
    infer_size: int | str | None = None,
    highlight_knee: float | None = None,
    backend: str = "cpu",
) -> Method:
    """An Enhancer (uint8 API, the shipped LUT path) as a method; smoothing is off."""
    from psenet_stream.enhancer import Enhancer

    opts = {"smoothing": 0.0}
    if infer_size is not None:
        opts["infer_size"] = infer_size
    if highlight_knee is not None:
        opts["highlight_knee"] = highlight_knee
    enh = Enhancer.from_pretrained(str(weights) if weights is not None else None, backend=backend, **opts)

    def fn(img: np.ndarray) -> np.ndarray:
        enh.reset()
        return enh(img)

    meta = enh.meta
    info = {
        "kind": "psenet",
        "weights": meta.get("path"),
        "sha256": meta.get("sha256"),
        "imported_from": meta.get("imported_from"),
        "infer_size": enh.options.infer_size,
        "highlight_knee": enh.options.highlight_knee,
        "backend": enh.backend.describe(),
    }
    return Method(name, fn, info)


def _shared_dirs() -> list[Path]:
    env = os.environ.get("PSENET_SHARED")
    root = Path(__file__).resolve().parents[1]
    cands = [Path(env)] if env else []
    cands += [root.parent / "shared", Path.cwd().parent / "shared", Path.cwd() / "shared"]
    return cands


def official_checkpoints() -> dict[str, Path]:
    """The official sice.pth / afifi.pth in ../shared/peers/psenet (or $PSENET_SHARED), when present."""
    for d in _shared_dirs():
        peers = d / "peers" / "psenet"
        found = {n: peers / f"{n}.pth" for n in ("sice", "afifi") if (peers / f"{n}.pth").is_file()}
        if found:
            return found
    return {}


# --- data -----------------------------------------------------------------------------------


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}", "pass a folder of photos to --data")
    files = specs.list_images(folder)
    if not files:
        raise InputError(f"no images in {folder}", f"put photos ({', '.join(specs.IMAGE_EXTENSIONS)}) in the folder")
    return files


def load_photo(path: str | Path, long_side: int | None = DEFAULT_LONG_SIDE, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image as uint8 RGB (alpha dropped, grey expanded), bounded to ``long_side``
    or resized to exactly ``size`` = (w, h)."""
    from psenet_stream.io.sources import ImageSource

    rgb, why = ImageSource.read_reason(Path(path))  # the path-safe reader: bytes from a regular file only
    if rgb is None:
        raise InputError(f"cannot read image {path}: {why}", "remove or convert the file")
    return _fit(rgb, long_side, size)


def _fit(rgb: np.ndarray, long_side: int | None, size: tuple[int, int] | None) -> np.ndarray:
    if size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(size):
        interp = cv2.INTER_AREA if size[0] < rgb.shape[1] else cv2.INTER_LINEAR
        return cv2.resize(rgb, tuple(size), interpolation=interp)
    return shrink_to_long_side(rgb, long_side)


def synthesize(img: np.ndarray, ev: float, family: str = "linear", seed: int = 0) -> np.ndarray:
    """An exposure error of ``ev`` stops, stored as 8-bit sRGB. Family "linear": applied in
    linear light with a hard clip at white; "camera": a camera-like rendering (noise that grows
    as exposure drops, soft highlight shoulder or clip, white balance, JPEG; psenet_stream.synthesis)
    drawn from ``seed``. EV 0 returns the photo itself."""
    if ev == 0:
        return img
    if family == "camera":
        from psenet_stream.synthesis import camera_expose

        return camera_expose(img, ev, seed)
    if family != "linear":
        raise ValueError(f"Invalid family ({family!r}). Supported values are {', '.join(FAMILIES)}.")
    x = metrics.to_tensor(img).double()
    y = ops.expose(x, float(ev))
    return (y[0].permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


# --- running -------------------------------------------------------------------------------


class _Acc:
    """Per-method accumulator of per-image metrics by group name."""

    def __init__(self):
        self.rows: dict[str, list[dict[str, float]]] = {}
        self.seconds = 0.0

    def add(self, groups: Iterable[str], m: dict[str, float]) -> None:
        for g in groups:
            self.rows.setdefault(g, []).append(m)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for g, rows in self.rows.items():
            s = {"n": len(rows)}
            for k in METRIC_KEYS:
                vals = [r[k] for r in rows if k in r]
                if vals:
                    s[k] = float(np.mean(vals))
            out[g] = s
        return out


def _ev_key(ev: float) -> str:
    return f"{ev:+g}"


def evaluate_synthetic(
    methods: Sequence[Method],
    photos: Sequence[tuple[str, np.ndarray]],
    subsets: dict[str, Sequence[float]] = SUBSETS,
    progress: Callable[[str], None] | None = None,
    family: str = "linear",
) -> dict:
    """Run every method on every (photo, EV) and summarise by subset, "all" and per EV.
    ``family`` picks the degradation (``synthesize``); the camera family draws one camera per
    (photo, EV) from a seed fixed by their order, so every method sees the same inputs.

    Returns {"methods": {name: {"info", "subsets": {under, over, all}, "per_ev": {...},
    "seconds"}}, "reference": metrics of the original photos (clipped, nr_score)}.
    """
    accs = {m.name: _Acc() for m in methods}
    ref_acc = _Acc()
    for i, (name, ref) in enumerate(photos):
        ref_acc.add(["photos"], metrics.image_metrics(ref, None))
        for sub, evs in subsets.items():
            for j, ev in enumerate(evs):
                x = synthesize(ref, ev, family, seed=1000 * i + 10 * list(subsets).index(sub) + j)
                for m in methods:
                    t0 = time.perf_counter()
                    y = m(x)
                    accs[m.name].seconds += time.perf_counter() - t0
                    if y.shape != ref.shape or y.dtype != np.uint8:
                        raise RuntimeError(f"method {m.name} returned {y.shape} {y.dtype} for {ref.shape} uint8")
                    groups = [sub, f"ev{_ev_key(ev)}"] + (["all"] if ev != 0 else [])
                    accs[m.name].add(groups, metrics.image_metrics(y, ref))
        if progress:
            progress(f"[{i + 1}/{len(photos)}] {name}")
    out = {"methods": {}, "reference": ref_acc.summary().get("photos", {})}
    for m in methods:
        s = accs[m.name].summary()
        out["methods"][m.name] = {
            "info": m.info,
            "subsets": {k: s[k] for k in [*subsets, "all"] if k in s},
            "per_ev": {k[2:]: v for k, v in s.items() if k.startswith("ev")},
            "seconds": round(accs[m.name].seconds, 3),
        }
    return out


def find_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """(input, gt) pairs from DIR/input and DIR/gt, matched by stem (or by stem prefix
    ``<gt stem>_``/``-``, for several exposures of one scene)."""
    folder = Path(folder)
    inp_dir, gt_dir = folder / "input", folder / "gt"
    if not inp_dir.is_dir() or not gt_dir.is_dir():
        raise InputError(f"{folder} needs input/ and gt/ sub-folders", "lay the pairs out as DIR/input/<name>.* and DIR/gt/<name>.*")
    gts = {p.stem: p for p in list_images(gt_dir)}
    pairs = []
    for p in list_images(inp_dir):
        gt = gts.get(p.stem)
        if gt is None:
            for sep in ("_", "-"):
                head = p.stem.rsplit(sep, 1)[0]
                if head in gts:
                    gt = gts[head]
                    break
        if gt is None:
            log.warning("no ground truth for %s; skipped", p.name)
            continue
        pairs.append((p, gt))
    if not pairs:
        raise InputError(f"no input/gt pairs matched by name in {folder}", "give each input the stem of its ground truth")
    return pairs


def evaluate_paired(
    methods: Sequence[Method],
    pairs: Sequence[tuple[Path, Path]],
    long_side: int | None = DEFAULT_LONG_SIDE,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run every method on paired inputs; the input is resized to its ground truth's size."""
    accs = {m.name: _Acc() for m in methods}
    ref_acc = _Acc()
    cache: dict[Path, np.ndarray] = {}
    for i, (inp, gtp) in enumerate(pairs):
        if gtp not in cache:
            cache = {gtp: load_photo(gtp, long_side)}
            ref_acc.add(["photos"], metrics.image_metrics(cache[gtp], None))
        ref = cache[gtp]
        x = load_photo(inp, None, size=(ref.shape[1], ref.shape[0]))
        for m in methods:
            t0 = time.perf_counter()
            y = m(x)
            accs[m.name].seconds += time.perf_counter() - t0
            accs[m.name].add(["paired"], metrics.image_metrics(y, ref))
        if progress:
            progress(f"[{i + 1}/{len(pairs)}] {inp.name}")
    out = {"methods": {}, "reference": ref_acc.summary().get("photos", {})}
    for m in methods:
        out["methods"][m.name] = {"info": m.info, "subsets": accs[m.name].summary(), "seconds": round(accs[m.name].seconds, 3)}
    return out


# --- reporting ------------------------------------------------------------------------------


def _fmt(v: float | None, k: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if k == "psnr":
        return f"{v:.2f}"
    if k == "ssim":
        return f"{v:.4f}"
    if k == "clipped":
        return f"{100 * v:.1f}"
    if k == "nr_score":
        return f"{1000 * v:.2f}"
    if k == "dy":
        return f"{v:+.1f}"
    return f"{v:g}"


def to_markdown(result: dict, title: str = "") -> str:
    """One row per method; per subset one cell "PSNR / SSIM / ΔY" (dB, SSIM, mean luma error in
    8-bit levels), then clipped % and the NR score (x1000) over "all"."""
    methods = result["methods"]
    subsets: list[str] = []
    for r in methods.values():
        for s in r["subsets"]:
            if s not in subsets:
                subsets.append(s)
    heads = ["method"] + [f"{s} PSNR / SSIM / ΔY" for s in subsets] + ["clip %", "NR"]
    lines = []
    if title:
        lines += [title, ""]
    lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for name, r in methods.items():
        cells = [name]
        for s in subsets:
            v = r["subsets"].get(s, {})
            cells.append(" / ".join(_fmt(v.get(k), k) for k in ("psnr", "ssim", "dy")))
        pooled = r["subsets"].get("all", {})
        cells += [_fmt(pooled.get("clipped"), "clipped"), _fmt(pooled.get("nr_score"), "nr_score")]
        lines.append("| " + " | ".join(cells) + " |")
    ref = result.get("reference") or {}
    if ref:
        lines += ["", f"Original photos: clip % {_fmt(ref.get('clipped'), 'clipped')}, NR {_fmt(ref.get('nr_score'), 'nr_score')}."]
    return "\n".join(lines) + "\n"


def temp_weights_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="psenet-eval-")


# --- highlight noise (official PSENet issue #2) ------------------------------------------


def highlight_scene(size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A near-white field (255 minus 0-3 LSB of uniform noise, std ~1.1 LSB) with a small
    skin-coloured ellipse in the middle, as in official PSENet issue #2.

    Returns the uint8 RGB image and a boolean mask of the white region (the object and a
    12-pixel margin around it excluded)."""
    rng = np.random.default_rng(seed)
    img = (255 - rng.integers(0, 4, size=(size, size, 3))).astype(np.uint8)
    obj = np.zeros((size, size), np.uint8)
    c = size // 2
    cv2.ellipse(obj, (c, c), (size // 8, size // 6), 0, 0, 360, 255, -1)
    skin = np.array([224, 172, 138], np.int16)
    shade = rng.integers(-6, 7, size=(size, size, 1))
    img[obj > 0] = np.clip(skin + shade, 0, 255).astype(np.uint8)[obj > 0]
    near = cv2.dilate(obj, np.ones((25, 25), np.uint8))
    return img, near == 0


def highlight_noise(enhance: Callable[[np.ndarray], np.ndarray], size: int = 256, seed: int = 0) -> dict[str, float]:
    """Noise of the white region before and after ``enhance``: std in 8-bit levels (mean of
    the per-channel stds), the output's min value there, and the darkening."""
    img, white = highlight_scene(size, seed)
    out = enhance(img)
    a = img[white].astype(np.float64)
    b = out[white].astype(np.float64)
    return {
        "input_std": float(a.std(axis=0).mean()),
        "output_std": float(b.std(axis=0).mean()),
        "output_min": float(b.min()),
        "output_mean": float(b.mean()),
    }
