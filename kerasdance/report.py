"""Pictures for people: depth frames with projected skeletons (PNG strips, animated GIFs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.skeleton import BONES


def depth_to_rgb(depth_mm: np.ndarray, near_mm: float | None = None, far_mm: float | None = None) -> np.ndarray:
    """``(H, W)`` depth -> ``(H, W, 3)`` uint8: near is bright, holes are black."""
    d = np.asarray(depth_mm, np.float64)
    valid = d > 0
    if not valid.any():
        return np.zeros(d.shape + (3,), np.uint8)
    near = np.percentile(d[valid], 1) if near_mm is None else near_mm
    far = np.percentile(d[valid], 99) if far_mm is None else far_mm
    t = np.clip((far - d) / max(far - near, 1.0), 0, 1)
    g = (40 + 215 * t).astype(np.uint8)
    rgb = np.stack([g, (g * 0.85).astype(np.uint8), (g * 0.6).astype(np.uint8)], axis=-1)
    rgb[~valid] = 0
    return rgb


def draw_frame(depth_mm, intrinsics: Intrinsics, skeletons=(), scale: int = 2):
    """A PIL image of one depth frame with skeletons ``[(joints_m (20, 3), colour), ...]`` drawn on it."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(depth_to_rgb(depth_mm)).resize(
        (intrinsics.width * scale, intrinsics.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    for joints, colour in skeletons:
        uv = intrinsics.project(joints)[:, :2] * scale
        for a, b in BONES:
            if np.all(np.isfinite(uv[[a, b]])):
                draw.line([tuple(uv[a]), tuple(uv[b])], fill=colour, width=2)
        for p in uv:
            if np.all(np.isfinite(p)):
                draw.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)
    return img


def preview_png(seq, path: str | Path, num_frames: int = 6, predicted_m: np.ndarray | None = None) -> Path:
    """A strip of ``num_frames`` evenly spaced frames of a ``Sequence`` with its (and predicted) joints."""
    from PIL import Image

    if seq.depth_mm is None:
        raise ValueError(f"{seq.name} has no depth frames to preview")
    idx = np.linspace(0, seq.num_frames - 1, min(num_frames, seq.num_frames)).round().astype(int)
    tiles = [draw_frame(seq.depth_mm[i], seq.intrinsics, _skeletons(seq, predicted_m, i), scale=1) for i in idx]
    w, h = tiles[0].size
    strip = Image.new("RGB", (w * len(tiles), h))
    for k, tile in enumerate(tiles):
        strip.paste(tile, (k * w, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    strip.save(path)
    return path


def animation_gif(seq, path: str | Path, predicted_m: np.ndarray | None = None, fps: float = 15.0) -> Path:
    """An animated GIF of every frame, true skeleton in green, predicted in red."""
    frames = [draw_frame(seq.depth_mm[i], seq.intrinsics, _skeletons(seq, predicted_m, i), scale=1)
              for i in range(seq.num_frames)]
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return path


def _skeletons(seq, predicted_m, i):
    out = []
    if seq.joints_m is not None and i < len(seq.joints_m):
        out.append((seq.joints_m[i], (60, 220, 90)))
    if predicted_m is not None and i < len(predicted_m):
        out.append((predicted_m[i], (230, 60, 60)))
    return out
