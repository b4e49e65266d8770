"""Every training setting in one dataclass; its ``to_dict`` goes into each checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


OBJECTIVES = ("paper", "pairs")  # a "hybrid" (pairs + 0.1 x paper) measured worse: psenet_stream/weights/MODEL_CARD.md
SYNTH_FAMILIES = ("camera", "linear")
DEFAULT_ALPHA = {"paper": 50.0, "pairs": 0.01}


@dataclass
class TrainConfig:
    data_dir: str
    out: str
    val_dir: str | None = None
    val_count: int = 4  # photos held out of data_dir for the held-out check (when val_dir is None)
    steps: int | None = None  # total optimizer steps; None -> epochs * steps_per_epoch
    epochs: int = 40
    steps_per_epoch: int = 50
    minutes: float | None = None  # wall-clock limit (stops cleanly, checkpoints written)
    batch: int = 16
    crop: int = 128
    scale: tuple[float, float] = (0.5, 1.0)  # random zoom-out: a crop covers crop/scale pixels of the photo
    max_side: int = 512  # photos are preloaded with the long side at most this
    objective: str = "paper"  # "paper" (the paper's pseudo-GT) or "pairs" (restore the photo from a synthetic error)
    family: str = "camera"  # pairs: "camera" (noise, shoulder, JPEG, white balance) or "linear" (clip only)
    head: bool = False  # add the optional global exposure head (model.ExposureHead)
    head_only: bool = False  # train only the head (the rest frozen, e.g. fine-tuning --init weights)
    p_over: float = 0.5  # share of over-exposure among the synthetic exposure errors
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.99)
    patience: int = 5  # ReduceLROnPlateau (factor 0.5) patience in epochs, on the epoch-mean loss
    alpha: float | None = None  # TV weight; None: 50 for "paper", 0.01 for "pairs"
    tv: str = "log2"  # "log2" (official code) or "l1" (paper Eq. 9)
    n_refs: int = 1  # N brighter + N darker references
    log_gamma_bright: float = 3.0  # brighter refs: log gamma stratified in [0, this]
    log_gamma_dark: float = -2.0  # darker refs: log gamma stratified in [this, 0]
    mu: float = 0.5  # well-exposed level of the quality score
    strategy: str = "delay"  # "delay" (official one-batch delay) or "stale" (same batch, no delay)
    synth: str = "auto"  # synthetic exposure errors: "on", "off", "auto" (on for plain folders)
    ev_under: tuple[float, float] = (-3.0, -0.5)
    ev_over: tuple[float, float] = (0.5, 2.0)
    p_clean: float = 0.2  # fraction of crops left unmodified
    hflip: bool = True
    vflip: bool = False
    seed: int = 42
    val_every: int = 100
    val_side: int = 256  # held-out photos are checked at this long side
    val_evs: tuple[float, ...] = (-2.5, -1.5, -0.75, 0.75, 1.5)
    threads: int = 2
    device: str = "cpu"  # "cpu" or "cuda": where the network trains (crops are drawn on the CPU)
    resume: str | None = None
    init: str | None = None
    log_every: int = 10

    def __post_init__(self) -> None:
        for f in ("scale", "betas", "ev_under", "ev_over", "val_evs"):
            setattr(self, f, tuple(float(v) for v in getattr(self, f)))
        if self.objective not in OBJECTIVES:
            raise ValueError(f"Invalid objective ({self.objective!r}). Supported values are {', '.join(OBJECTIVES)}.")
        if self.family not in SYNTH_FAMILIES:
            raise ValueError(f"Invalid family ({self.family!r}). Supported values are {', '.join(SYNTH_FAMILIES)}.")
        if not 0.0 <= self.p_over <= 1.0:
            raise ValueError(f"p_over must be in [0, 1], got {self.p_over}")
        if self.objective != "paper" and 0.0 not in self.val_evs:
            self.val_evs = (*self.val_evs, 0.0)  # pairs learn "leave it alone": check it too
        if self.alpha is None:
            self.alpha = DEFAULT_ALPHA[self.objective]
        if self.tv not in ("log2", "l1"):
            raise ValueError(f"tv must be 'log2' or 'l1', not {self.tv!r}")
        if self.strategy not in ("delay", "stale"):
            raise ValueError(f"strategy must be 'delay' or 'stale', not {self.strategy!r}")
        if self.synth not in ("auto", "on", "off"):
            raise ValueError(f"synth must be auto/on/off, not {self.synth!r}")

    @property
    def total_steps(self) -> int:
        return int(self.steps) if self.steps is not None else int(self.epochs) * int(self.steps_per_epoch)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
