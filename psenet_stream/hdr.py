"""HDR video (PQ and HLG): the correction is estimated on an SDR rendition and applied so the
output stays HDR.

The network was trained on SDR pictures, so it never sees the HDR signal itself:

1. The decoded signal (BT.2020 RGB, PQ or HLG coded, 16-bit) is turned into display light
   in cd/m² (PQ: the SMPTE ST 2084 EOTF; HLG: the inverse OETF and the BT.2100 OOTF for a
   1000 cd/m² display) and divided by HDR reference white, 203 cd/m² (ITU-R BT.2408):
   ``rel`` = 1 is "paper white".
2. The SDR rendition is ``s = min(rel, 1) ** (1 / 2.4)`` (BT.1886 display gamma): what an
   SDR camera exposed for the same white would record. The network predicts gamma on it
   (``Enhancer.predict``), with the usual temporal smoothing.
3. The curve is applied to the rendition, ``y = 1 - (1 - s) ** gamma``, and brought back to
   light, ``rel_out = y ** 2.4``, for every pixel up to reference white. Above reference
   white (specular highlights, the sky, lamps: the part of the picture only HDR has) the
   signal passes unchanged. The two meet at rel = 1 (the curve maps 1 to 1), so the result
   is continuous and monotonic, and the HDR range and highlights are kept.
4. ``rel_out`` is encoded back with the input's transfer (PQ or HLG): the output is HDR with
   the same tags, and the sink keeps the mastering display and content light level
   metadata (io/hdr.py).

``to_sdr`` (``--hdr sdr``) is a tone map instead: BT.2020 to BT.709 primaries in linear
light, a soft shoulder above 0.75 of reference white that reaches white at
``SDR_PEAK_REL`` (so highlights up to 4x paper white keep some detail), BT.1886 gamma;
the corrected 8-bit BT.709 SDR picture is written.

Only numpy and the curve: no av here (io/ reads and writes the frames).
"""

from __future__ import annotations

import numpy as np

from psenet_stream.curve import apply_float

PQ, HLG = 16, 18  # AVColorTransferCharacteristic of SMPTE ST 2084 and ARIB STD-B67
REFERENCE_WHITE = 203.0  # cd/m², ITU-R BT.2408
HLG_PEAK = 1000.0  # nominal display peak for HLG's OOTF (BT.2100)
SDR_GAMMA = 2.4  # BT.1886
SDR_KNEE = 0.75  # --hdr sdr: linear below this fraction of reference white
SDR_PEAK_REL = 4.0  # --hdr sdr: light at 4x reference white (812 cd/m²) reaches SDR white

_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
_HA, _HB = 0.17883277, 0.28466892
_HC = 0.5 - _HA * np.log(4 * _HA)
_LUMA2020 = np.array([0.2627, 0.6780, 0.0593], np.float32)
_BT2020_TO_709 = np.array(
    [[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]], np.float32
)  # linear light (ITU-R BT.2087)


def name(trc: int | None) -> str | None:
    return {PQ: "PQ", HLG: "HLG"}.get(int(trc or 0))


def pq_to_nits(e: np.ndarray) -> np.ndarray:
    ep = np.power(np.clip(e, 0.0, 1.0), 1.0 / _M2)
    return 10000.0 * np.power(np.maximum(ep - _C1, 0.0) / (_C2 - _C3 * ep), 1.0 / _M1)


def nits_to_pq(fd: np.ndarray) -> np.ndarray:
    y = np.power(np.clip(fd / 10000.0, 0.0, 1.0), _M1)
    return np.power((_C1 + _C2 * y) / (1.0 + _C3 * y), _M2)


def _hlg_inv_oetf(e: np.ndarray) -> np.ndarray:
    e = np.clip(e, 0.0, 1.0)
    return np.where(e <= 0.5, e * e / 3.0, (np.exp((e - _HC) / _HA) + _HB) / 12.0)


def _hlg_oetf(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 1 / 12, np.sqrt(3.0 * x), _HA * np.log(np.maximum(12.0 * x - _HB, 1e-12)) + _HC)


def _hlg_gamma() -> float:
    return 1.2 + 0.42 * np.log10(HLG_PEAK / 1000.0)


def hlg_to_nits(e: np.ndarray) -> np.ndarray:
    """(..., 3) HLG signal -> display light (cd/m²) on a HLG_PEAK display (BT.2100 OOTF)."""
    scene = _hlg_inv_oetf(e)
    ys = np.maximum(scene @ _LUMA2020, 1e-12)[..., None]
    return HLG_PEAK * np.power(ys, _hlg_gamma() - 1.0) * scene


def nits_to_hlg(fd: np.ndarray) -> np.ndarray:
    g = _hlg_gamma()
    yd = np.maximum(fd @ _LUMA2020, 1e-12)[..., None]
    ys = np.power(yd / HLG_PEAK, 1.0 / g)
    scene = fd / (HLG_PEAK * np.power(ys, g - 1.0))
    return _hlg_oetf(scene)


def to_light(signal: np.ndarray, trc: int) -> np.ndarray:
    """uint16 (H, W, 3) HDR signal -> float32 light relative to reference white."""
    e = signal.astype(np.float32) * np.float32(1 / 65535)
    nits = pq_to_nits(e) if trc == PQ else hlg_to_nits(e)
    return (nits / REFERENCE_WHITE).astype(np.float32)


def from_light(rel: np.ndarray, trc: int) -> np.ndarray:
    nits = np.maximum(rel, 0.0) * REFERENCE_WHITE
    e = nits_to_pq(nits) if trc == PQ else nits_to_hlg(nits)
    return (np.clip(e, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def rendition(signal: np.ndarray, trc: int) -> np.ndarray:
    """The SDR rendition the network sees: float32 (H, W, 3) in [0, 1] (see the module doc)."""
    return np.power(np.minimum(to_light(signal, trc), 1.0), 1.0 / SDR_GAMMA).astype(np.float32)


def tone_map(signal: np.ndarray, trc: int) -> np.ndarray:
    """``--hdr sdr``: float32 (H, W, 3) BT.709 SDR (gamma-coded, [0, 1])."""
    rel = np.maximum(to_light(signal, trc) @ _BT2020_TO_709.T, 0.0)
    k, peak = SDR_KNEE, SDR_PEAK_REL
    over = np.maximum(rel - k, 0.0)
    span = peak - k
    shoulder = k + (1.0 - k) * (1.0 - np.exp(-over * 3.0 / span)) / (1.0 - np.exp(-3.0))  # reaches 1 at the peak
    lin = np.where(rel <= k, rel, np.minimum(shoulder, 1.0))
    return np.power(lin, 1.0 / SDR_GAMMA).astype(np.float32)


class HdrEnhancer:
    """Wraps an ``Enhancer`` for HDR frames: (N, H, W, 3) uint16 PQ or HLG signal in, the same
    out (``mode`` "keep"), or (N, H, W, 3) uint8 BT.709 SDR out (``mode`` "sdr").

    A ``SplitEnhancer`` like the Enhancer (``predict`` + ``apply``), so the pipeline runs the
    full-resolution half in its writer thread."""

    supports_yuv420p = False  # frames are 16-bit RGB
    preferred_batch = None

    def __init__(self, enhancer, trc: int, mode: str = "keep"):
        if trc not in (PQ, HLG):
            raise ValueError(f"not an HDR transfer: {trc}")
        self.enhancer, self.trc, self.mode = enhancer, trc, mode
        knee = getattr(getattr(enhancer, "options", None), "highlight_knee", None)
        self.knee = 0.95 if knee is None else knee

    def __getattr__(self, attr):  # backend_description, describe, reset, ...
        return getattr(self.enhancer, attr)

    def _sdr(self, frame: np.ndarray) -> np.ndarray:
        return tone_map(frame, self.trc) if self.mode == "sdr" else rendition(frame, self.trc)

    def predict(self, frames: np.ndarray) -> list:
        sdr = np.stack([(self._sdr(f) * 65535.0 + 0.5).astype(np.uint16) for f in frames])
        return self.enhancer.predict(sdr)

    def apply(self, frame: np.ndarray, plan) -> np.ndarray:
        from psenet_stream.exposure import Plan

        if isinstance(plan, Plan):  # the exposure gain is fitted on SDR photos: HDR keeps its own levels
            plan = plan.log_gamma
        s = self._sdr(frame)
        y = apply_float(s, plan, self.knee)
        if self.mode == "sdr":
            return (np.clip(y, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        rel = to_light(frame, self.trc)
        out = np.where(rel < 1.0, np.power(np.clip(y, 0.0, 1.0), SDR_GAMMA), rel)
        return from_light(out, self.trc)

    def enhance_frames(self, frames: np.ndarray, out=None) -> np.ndarray:
        res = np.stack([self.apply(f, p) for f, p in zip(frames, self.predict(frames))])
        if out is not None:
            out[...] = res
            return out
        return res
