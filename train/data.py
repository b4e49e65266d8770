"""Training photos: discovery, preloading, random crops and synthetic exposure errors.

Layouts (the folder names the official PSENet code's data loader expects), detected from the
folder given to ``--data``:

* any folder of images, searched recursively: well-exposed photos; synthetic exposure
  errors (linear light, ``ops.expose``) turn them into training inputs;
* SICE: ``<root>/[sice/]train_data/*`` (the Zero-DCE part-1 images, already badly exposed);
* Afifi: ``<root>/[afifi/]training/INPUT_IMAGES/*`` (already rendered at -1.5 .. +1.5 EV);
* LOL: ``<root>/[lol/]our485/{low,high}/*``.

For the three benchmark layouts the images already carry exposure errors, so synthetic
errors are off unless asked for (``synth="on"``), as in the official training.
Everything is preloaded as uint8 tensors (long side <= max_side): small sets, fast steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from psenet_stream.curve import fit_long_side, shrink_to_long_side
from psenet_stream.errors import InputError
from psenet_stream.io.specs import IMAGE_EXTENSIONS, list_images
from psenet_stream.ops import expose
from psenet_stream.synthesis import CameraModel, degrade


def find_images(root: str | Path) -> list[Path]:
    """Images under ``root``, recursively (``io.specs.list_images``: the one extension table;
    hidden files and folders skipped; linked folders not entered), in sorted path order."""
    return sorted(list_images(Path(root)))


def detect_layout(root: str | Path) -> tuple[str, list[Path]]:
    """(layout name, training image files) for a data folder. Raises InputError if there are none."""
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(
            f"data folder not found: {root}", "pass a folder of photos to --data (psenet-stream data --dest DIR fetches one into DIR/train)"
        )
    if not root.is_dir():
        raise InputError(f"--data must be a folder, not a file: {root}", "pass the folder that holds the photos")
    for base in (root, root / "sice"):
        if (base / "train_data").is_dir():
            return "sice", find_images(base / "train_data")
    for base in (root, root / "afifi"):
        if (base / "training" / "INPUT_IMAGES").is_dir():
            return "afifi", find_images(base / "training" / "INPUT_IMAGES")
    for base in (root, root / "lol"):
        if (base / "our485").is_dir():
            return "lol", find_images(base / "our485" / "low") + find_images(base / "our485" / "high")
    files = find_images(root)
    if not files:
        raise InputError(
            f"no images in {root} (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)",
            "pass a folder of photos to --data, e.g. DIR/train after psenet-stream data --dest DIR",
        )
    return "folder", files


def load_rgb(path: str | Path, max_side: int | None = None) -> torch.Tensor:
    """uint8 (3, H, W) RGB; downscaled (INTER_AREA) so the long side is <= max_side."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot decode image {path}", "remove the file or convert it to PNG/JPEG")
    img = shrink_to_long_side(img, max_side)
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1).contiguous()


def split_holdout(files: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """(train, held-out): every k-th file of the sorted list, fixed regardless of the seed."""
    files = sorted(files)
    if count <= 0 or len(files) < 2:
        return files, []
    count = min(count, len(files) // 2)
    k = len(files) / count
    idx = {int(k * i + k / 2) for i in range(count)}
    return [f for i, f in enumerate(files) if i not in idx], [f for i, f in enumerate(files) if i in idx]


@dataclass
class Sampler:
    """Random crops + flips + exposure errors from preloaded images. All randomness from ``generator``."""

    images: list[torch.Tensor]
    crop: int = 128
    scale: tuple[float, float] = (0.5, 1.0)
    synth: bool = True
    ev_under: tuple[float, float] = (-3.0, -0.5)
    ev_over: tuple[float, float] = (0.5, 2.0)
    p_clean: float = 0.2
    hflip: bool = True
    vflip: bool = False
    p_over: float = 0.5  # share of over-exposure among the exposure errors
    camera: CameraModel | None = None  # pairs: how each crop's camera is drawn (None: linear clip)

    def _u(self, g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g))

    def _crop(self, img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        c = self.crop
        _, h, w = img.shape
        s = self._u(g, *self.scale)
        side = min(h, w, max(c, round(c / s))) if min(h, w) >= c else min(h, w)
        y = int(torch.randint(0, h - side + 1, (), generator=g))
        x = int(torch.randint(0, w - side + 1, (), generator=g))
        patch = img[:, y : y + side, x : x + side].float().div_(255.0).unsqueeze(0)
        if side != c:
            patch = F.interpolate(patch, size=(c, c), mode="bilinear", align_corners=False, antialias=side > c).clamp_(0, 1)
        if self.hflip and self._u(g) < 0.5:
            patch = patch.flip(-1)
        if self.vflip and self._u(g) < 0.5:
            patch = patch.flip(-2)
        return patch

    def evs(self, n: int, g: torch.Generator) -> torch.Tensor:
        """Per-crop EV: 0 with p_clean, else under or over (equally likely), uniform in its range."""
        out = torch.zeros(n)
        for i in range(n):
            r = self._u(g)
            if r < self.p_clean:
                continue
            lo, hi = self.ev_under if self._u(g) < 1.0 - self.p_over else self.ev_over
            out[i] = self._u(g, lo, hi)
        return out

    def batch(self, n: int, g: torch.Generator) -> torch.Tensor:
        """(n, 3, crop, crop) float in [0, 1]: the training inputs."""
        idx = torch.randint(0, len(self.images), (n,), generator=g).tolist()
        x = torch.cat([self._crop(self.images[i], g) for i in idx])
        if self.synth:
            ev = self.evs(n, g)
            x = torch.where((ev == 0).reshape(-1, 1, 1, 1), x, expose(x, ev))
        return x.contiguous()


    def pairs(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), each (n, 3, crop, crop) float in [0, 1]: a well-exposed crop is
        the target, the same crop through a random camera mis-exposed by a random EV the input.
        A share ``p_clean`` of crops is EV 0: the input is the photo and so is the target."""
        idx = torch.randint(0, len(self.images), (n,), generator=g).tolist()
        target = torch.cat([self._crop(self.images[i], g) for i in idx])
        evs = self.evs(n, g).tolist()
        camera = self.camera or CameraModel(p_shoulder=0.0, p_noise=0.0, p_wb=0.0, p_jpeg=0.0)
        x = torch.cat([degrade(target[i : i + 1], camera.sample(ev, g), g) for i, ev in enumerate(evs)])
        return x.contiguous(), target.contiguous()


def validation_set(images: list[torch.Tensor], side: int, evs: tuple[float, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed held-out pairs (input, reference): each photo at long side ``side`` under each EV."""
    pairs = []
    for img in images:
        ref = img.float().div(255.0).unsqueeze(0)
        h, w = ref.shape[-2:]
        if max(h, w) > side:  # bilinear with antialiasing (the tensors are float), each side >= 2
            sh, sw = fit_long_side(h, w, side)
            ref = F.interpolate(ref, size=(max(2, sh), max(2, sw)), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
        for ev in evs:
            pairs.append((expose(ref, float(ev)), ref))
    return pairs
