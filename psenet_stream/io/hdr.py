"""HDR metadata through PyAV: the mastering display colour volume (SMPTE ST 2086) and the
content light level (MaxCLL / MaxFALL) read from a decoded frame's side data, and handed
to the encoder (x265's and x264's own parameters) so the output carries them again.

The picture itself is converted in psenet_stream/hdr.py (no av there).
"""

from __future__ import annotations

import struct

import av

_MDCV = av.sidedata.sidedata.Type.MASTERING_DISPLAY_METADATA
_CLL = av.sidedata.sidedata.Type.CONTENT_LIGHT_LEVEL


def read_side_data(frame) -> dict:
    """{'mastering': {'R': (x, y), 'G', 'B', 'WP', 'L': (min, max)}, 'cll': (max_cll, max_fall)}
    (chromaticities as floats, luminance in cd/m²), from a decoded frame; {} when absent."""
    out: dict = {}
    try:
        items = list(frame.side_data)
    except (AttributeError, TypeError, KeyError):
        return out
    for sd in items:
        try:
            kind, data = sd.type, bytes(sd)
        except (AttributeError, TypeError, ValueError):
            continue
        if kind == _MDCV and len(data) >= 88:
            r = struct.unpack("<20i2i", data[:88])  # 10 AVRationals: R, G, B primaries (x, y), white point, min, max luminance
            q = [r[2 * i] / r[2 * i + 1] if r[2 * i + 1] else 0.0 for i in range(10)]
            has_prim, has_lum = r[20], r[21]
            m = {}
            if has_prim:
                m.update({"R": (q[0], q[1]), "G": (q[2], q[3]), "B": (q[4], q[5]), "WP": (q[6], q[7])})
            if has_lum:
                m["L"] = (q[8], q[9])
            if m:
                out["mastering"] = m
        elif kind == _CLL and len(data) >= 8:
            out["cll"] = struct.unpack("<II", data[:8])
    return out


def _master_display(m: dict) -> str | None:
    """x265 / x264 syntax: G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min), units 0.00002 and 0.0001 cd/m²."""
    if not all(k in m for k in ("R", "G", "B", "WP", "L")):
        return None

    def xy(k):
        return f"{k}({round(m[k][0] / 0.00002)},{round(m[k][1] / 0.00002)})"

    return f"{xy('G')}{xy('B')}{xy('R')}{xy('WP')}L({round(m['L'][1] / 0.0001)},{round(m['L'][0] / 0.0001)})"


def encoder_params(codec: str, meta: dict, color: dict) -> dict[str, str]:
    """Encoder options that write ``meta`` (from ``read_side_data``) and the HDR colour tags
    into the bitstream; {} for encoders without such options (the container's colour tags
    still say HDR)."""
    parts = []
    md = _master_display(meta.get("mastering") or {})
    cll = meta.get("cll")
    if codec == "libx265":
        parts.append("hdr10=1" if color.get("color_trc") == 16 else "")
        if md:
            parts.append(f"master-display={md}")
        if cll:
            parts.append(f"max-cll={cll[0]},{cll[1]}")
        return {"x265-params": ":".join(p for p in parts if p)} if any(parts) else {}
    if codec == "libx264":
        if md:
            parts.append(f"mastering-display={md}")
        if cll:
            parts.append(f"cll={cll[0]},{cll[1]}")
        return {"x264-params": ":".join(parts)} if parts else {}
    return {}
