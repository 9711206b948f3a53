"""Synthetic objects: the embedded, download-free stand-in for the paper's neural stimuli.

The paper's recording stimuli (supplementary, "Neural Measurements") are 64 rendered objects
from 8 categories, shown with large variation in position, size and pose on uncorrelated
natural backgrounds. This module renders a procedural analogue:

* a **category** is a shape family: a fixed arrangement of parametric parts (superellipses with
  a category-specific layout, e.g. "car" = body + cabin + two dark wheels);
* an **object** is one member of that family: its own jittered part sizes, positions and angles,
  its own colour and surface stripes (colour carries no category information);
* every **image** draws a pose: rotation, mirror, scale, foreshortening along a random axis (a
  cheap in-depth rotation), position, light direction (parts are shaded as lit domes), and a
  fresh 1/f ("pink") noise background with random mean colour and contrast.

Categorising therefore needs shape invariance, not pixel templates. Everything is rendered in
batches with torch tensor ops (no per-image Python), deterministically from a seed: random
numbers always come from a CPU ``torch.Generator``; bit-identical output is promised for the
same seed, resolution and device.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from tgsage.data.base import DataSplits, ImageSet
from tgsage.errors import DataError

CATEGORY_NAMES: tuple[str, ...] = (
    "animal",
    "boat",
    "car",
    "chair",
    "face",
    "fruit",
    "plane",
    "table",
)
OBJECTS_PER_CATEGORY = 8
NUM_OBJECTS = len(CATEGORY_NAMES) * OBJECTS_PER_CATEGORY
MAX_PARTS = 6

# Part columns: cx, cy, half-width a, half-height b, angle (rad), superellipse exponent p,
# shade (brightness multiplier of the object's colour). Object coordinates span about [-1, 1].
_TEMPLATES: tuple[tuple[tuple[float, ...], ...], ...] = (
    (  # animal: body, head, two legs, tail, ear
        (0.0, 0.05, 0.55, 0.25, 0.0, 2.0, 1.0),
        (0.62, 0.32, 0.21, 0.18, 0.0, 2.0, 1.0),
        (-0.35, -0.38, 0.07, 0.26, 0.0, 2.0, 0.8),
        (0.35, -0.38, 0.07, 0.26, 0.0, 2.0, 0.8),
        (-0.68, 0.22, 0.22, 0.05, 0.6, 2.0, 0.8),
        (0.58, 0.55, 0.06, 0.1, -0.3, 2.0, 0.7),
    ),
    (  # boat: hull, mast, sail, cabin
        (0.0, -0.32, 0.75, 0.17, 0.0, 4.0, 1.0),
        (0.0, 0.22, 0.035, 0.52, 0.0, 4.0, 0.5),
        (0.25, 0.28, 0.2, 0.36, 0.0, 1.0, 1.35),
        (-0.35, -0.08, 0.18, 0.1, 0.0, 4.0, 0.75),
        (0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0),
        (0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0),
    ),
    (  # car: body, cabin, two dark wheels, window
        (0.0, -0.05, 0.78, 0.2, 0.0, 5.0, 1.0),
        (-0.05, 0.24, 0.42, 0.16, 0.0, 3.0, 1.0),
        (-0.46, -0.3, 0.17, 0.17, 0.0, 2.0, 0.25),
        (0.46, -0.3, 0.17, 0.17, 0.0, 2.0, 0.25),
        (-0.05, 0.27, 0.3, 0.09, 0.0, 4.0, 1.45),
        (0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0),
    ),
    (  # chair: seat, back, two legs, top rail
        (0.0, -0.05, 0.38, 0.06, 0.0, 6.0, 1.0),
        (-0.33, 0.38, 0.06, 0.45, 0.0, 6.0, 1.0),
        (0.32, -0.5, 0.05, 0.42, 0.0, 6.0, 0.8),
        (-0.33, -0.5, 0.05, 0.42, 0.0, 6.0, 0.8),
        (-0.33, 0.82, 0.12, 0.06, 0.0, 6.0, 0.9),
        (0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0),
    ),
    (  # face: head, two dark eyes, mouth, nose, hair
        (0.0, 0.0, 0.5, 0.62, 0.0, 2.0, 1.0),
        (-0.19, 0.16, 0.1, 0.065, 0.0, 2.0, 0.2),
        (0.19, 0.16, 0.1, 0.065, 0.0, 2.0, 0.2),
        (0.0, -0.32, 0.22, 0.05, 0.0, 2.0, 0.3),
        (0.0, -0.03, 0.05, 0.13, 0.0, 2.0, 0.75),
        (0.0, 0.55, 0.42, 0.16, 0.0, 2.0, 0.45),
    ),
    (  # fruit: round body, stem, leaf, highlight
        (0.0, -0.05, 0.52, 0.5, 0.0, 2.0, 1.0),
        (0.03, 0.55, 0.04, 0.16, 0.2, 2.0, 0.4),
        (0.22, 0.56, 0.16, 0.06, 0.5, 2.0, 0.7),
        (-0.2, 0.12, 0.1, 0.07, 0.6, 2.0, 1.5),
        (0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0),
        (0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0),
    ),
    (  # plane (top view): fuselage, wings, tail wing, fin, two engines
        (0.0, 0.0, 0.85, 0.09, 0.0, 2.0, 1.0),
        (0.08, 0.0, 0.15, 0.78, 0.0, 2.0, 1.0),
        (-0.72, 0.0, 0.07, 0.3, 0.0, 2.0, 0.9),
        (-0.6, 0.0, 0.2, 0.04, 0.0, 2.0, 0.6),
        (0.12, 0.38, 0.12, 0.05, 0.0, 2.0, 0.5),
        (0.12, -0.38, 0.12, 0.05, 0.0, 2.0, 0.5),
    ),
    (  # table: top, two legs, apron, stretcher
        (0.0, 0.28, 0.78, 0.07, 0.0, 6.0, 1.0),
        (-0.62, -0.22, 0.05, 0.48, 0.0, 6.0, 0.8),
        (0.62, -0.22, 0.05, 0.48, 0.0, 6.0, 0.8),
        (0.0, 0.16, 0.62, 0.05, 0.0, 6.0, 0.7),
        (0.0, -0.4, 0.6, 0.03, 0.0, 6.0, 0.6),
        (0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0),
    ),
)


@dataclass(frozen=True)
class RenderConfig:
    """Difficulty knobs of the renderer (defaults tuned so that architecture matters).

    Ranges are uniform unless noted. ``scale`` is the object's size as a fraction of half the
    image; ``shift`` the largest offset of its centre (same unit); ``rotation`` the largest
    in-plane angle in degrees; ``foreshorten`` the smallest squash along a random axis.
    """

    scale: tuple[float, float] = (0.45, 0.85)
    shift: float = 0.45
    rotation: float = 45.0
    mirror: bool = True
    foreshorten: float = 0.6
    bg_contrast: tuple[float, float] = (0.08, 0.3)
    bg_slope: tuple[float, float] = (1.0, 2.0)
    pixel_noise: float = 0.02
    edge_px: float = 1.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RenderConfig:
        """From plain values (a YAML or JSON mapping; lists become the ranges' tuples)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise DataError(
                f"synthetic render options: unknown {', '.join(unknown)}; "
                f"choose from {', '.join(sorted(known))}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


class SyntheticObjects:
    """A library of 64 objects (8 categories x 8) and a batch renderer for them.

    ``SyntheticObjects(seed)`` fixes the objects (shapes, colours, textures); ``render`` draws
    images of chosen objects with random poses and backgrounds from its own seed, so train,
    validation and test splits share objects but never images.
    """

    def __init__(self, seed: int = 0, config: RenderConfig | None = None) -> None:
        self.seed = int(seed)
        self.config = config or RenderConfig()
        g = torch.Generator().manual_seed(self.seed * 7919 + 17)
        base = torch.tensor(_TEMPLATES, dtype=torch.float32)  # (8, P, 7)
        parts = base.repeat_interleave(OBJECTS_PER_CATEGORY, dim=0).clone()  # (64, P, 7)
        n = NUM_OBJECTS
        active = parts[:, :, 2] > 0
        # Object identity: jittered layout, sizes and angles of the category's parts.
        parts[:, :, 0:2] += 0.07 * torch.randn(n, MAX_PARTS, 2, generator=g)
        parts[:, :, 2:4] *= torch.exp(0.22 * torch.randn(n, MAX_PARTS, 2, generator=g))
        parts[:, :, 4] += 0.18 * torch.randn(n, MAX_PARTS, generator=g)
        stretch = torch.exp(0.15 * torch.randn(n, 1, generator=g))
        parts[:, :, 0] *= stretch
        parts[:, :, 2] *= stretch
        parts[:, :, 2:4] = parts[:, :, 2:4].clamp_min(0.06)  # thin parts stay visible
        parts[:, :, 2:4] *= active.unsqueeze(-1).float()
        self.parts = parts
        self.active = active
        self.colors = 0.15 + 0.8 * torch.rand(n, 3, generator=g)
        self.stripe_amp = 0.35 * torch.rand(n, generator=g)
        self.stripe_freq = 1.5 + 4.0 * torch.rand(n, generator=g)
        self.stripe_dir = 2 * math.pi * torch.rand(n, generator=g)
        self.category_of_object = torch.arange(n) // OBJECTS_PER_CATEGORY

    def render(
        self,
        objects: torch.Tensor,
        resolution: int = 32,
        seed: int = 0,
        chunk: int = 64,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Images (N, 3, R, R) uint8 of the given object ids, one random pose per image."""
        objects = torch.as_tensor(objects, dtype=torch.long).flatten()
        if objects.numel() and (objects.min() < 0 or objects.max() >= NUM_OBJECTS):
            raise DataError(
                f"object ids must lie in [0, {NUM_OBJECTS}); got {objects.min()}..{objects.max()}"
            )
        if resolution < 8:
            raise DataError(f"resolution must be at least 8 pixels, got {resolution}")
        g = torch.Generator().manual_seed(int(seed))
        out = torch.empty(len(objects), 3, resolution, resolution, dtype=torch.uint8)
        for start in range(0, len(objects), chunk):
            ids = objects[start : start + chunk]
            out[start : start + len(ids)] = self._render_chunk(ids, resolution, g, device).cpu()
        return out

    def _render_chunk(
        self, ids: torch.Tensor, res: int, g: torch.Generator, device: torch.device | str
    ) -> torch.Tensor:
        cfg = self.config
        b = len(ids)
        # --- per-image random pose, light and background parameters (all drawn on CPU) ---
        theta = (torch.rand(b, generator=g) * 2 - 1) * math.radians(cfg.rotation)
        flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0) if cfg.mirror else None
        lo, hi = cfg.scale
        scale = lo + (hi - lo) * torch.rand(b, generator=g)
        shift = (torch.rand(b, 2, generator=g) * 2 - 1) * cfg.shift
        squash = cfg.foreshorten + (1 - cfg.foreshorten) * torch.rand(b, generator=g)
        squash_dir = math.pi * torch.rand(b, generator=g)
        light = 2 * math.pi * torch.rand(b, generator=g)
        bg = self._background(b, res, g)
        noise = cfg.pixel_noise * torch.randn(b, 3, res, res, generator=g)

        dev = torch.device(device)
        t = {
            k: v.to(dev)
            for k, v in dict(
                theta=theta,
                scale=scale,
                shift=shift,
                squash=squash,
                squash_dir=squash_dir,
                light=light,
                bg=bg,
                noise=noise,
            ).items()
        }
        parts = self.parts.to(dev)[ids.to(dev)]  # (b, P, 7)
        # --- inverse pose: image coords u in [-1, 1] -> object coords (x, y) ---
        coords = (torch.arange(res, device=dev, dtype=torch.float32) + 0.5) / res * 2 - 1
        uy, ux = torch.meshgrid(-coords, coords, indexing="ij")  # y up
        x = ux.reshape(1, -1) - t["shift"][:, 0:1]  # (b, HW)
        y = uy.reshape(1, -1) - t["shift"][:, 1:2]
        x, y = _rotate(x, y, -t["theta"][:, None])
        # foreshortening: squash along a random direction, i.e. divide that component.
        x, y = _rotate(x, y, -t["squash_dir"][:, None])
        x = x / t["squash"][:, None]
        x, y = _rotate(x, y, t["squash_dir"][:, None])
        inv_scale = 1 / t["scale"][:, None]
        x, y = x * inv_scale, y * inv_scale
        if flip is not None:
            x = x * flip.to(dev)[:, None]
        # --- parts: superellipse "domes"; a loop over the (<= 6) parts keeps tensors (b, HW) ---
        alpha = torch.zeros_like(x)
        height = torch.zeros_like(x)
        shade = torch.zeros_like(x)
        px_per_unit = t["scale"][:, None] * (res / 2)
        for k in range(MAX_PARTS):
            cx, cy, a, bb, ang, p, sh = (parts[:, k, j : j + 1] for j in range(7))
            if not bool((a > 0).any()):
                continue
            live = (a > 0).float()
            a, bb = a.clamp_min(1e-3), bb.clamp_min(1e-3)
            rx, ry = _rotate(x - cx, y - cy, -ang)
            q = (rx / a).abs().pow(p) + (ry / bb).abs().pow(p)
            r = q.clamp_min(1e-12).pow(1 / p)  # 1 on the part's boundary
            thick = torch.minimum(a, bb)
            # anti-aliased coverage from the signed distance in pixels ~ (1 - r) * thickness
            cover = ((1 - r) * (thick * px_per_unit / cfg.edge_px) + 0.5).clamp(0, 1) * live
            dome = torch.sqrt((1 - r * r).clamp_min(0)) * thick * live
            # later parts in template order are drawn on top (eyes on a face, wheels on a car)
            shade = torch.where(cover > 0.5, sh, shade)
            alpha = torch.maximum(alpha, cover)
            height = torch.maximum(height, dome)
        shade = torch.where(alpha > 0.5, shade, parts[:, 0, 6:7])
        # --- 3D-ish lighting from the height map's gradient (image space) ---
        hmap = (height * px_per_unit).reshape(b, res, res)
        gy, gx = torch.gradient(hmap, dim=(1, 2))
        lx, ly = torch.cos(t["light"])[:, None, None], torch.sin(t["light"])[:, None, None]
        lz = 0.8
        nrm = torch.sqrt(gx * gx + gy * gy + 1)
        lambert = ((-gx * lx + gy * ly + lz) / nrm / math.hypot(1, lz)).clamp(0, 1)
        light_term = 0.35 + 0.85 * lambert.reshape(b, -1)
        # --- object colour with object-specific stripes (in object coordinates) ---
        obj = ids.to(dev)
        ang = self.stripe_dir.to(dev)[obj][:, None]
        phase = x * torch.cos(ang) + y * torch.sin(ang)
        stripes = 1 + self.stripe_amp.to(dev)[obj][:, None] * torch.sin(
            2 * math.pi * self.stripe_freq.to(dev)[obj][:, None] * phase
        )
        intensity = (shade * light_term * stripes).unsqueeze(1)  # (b, 1, HW)
        color = self.colors.to(dev)[obj][:, :, None] * intensity  # (b, 3, HW)
        img = alpha[:, None] * color + (1 - alpha[:, None]) * t["bg"].reshape(b, 3, -1)
        img = img.reshape(b, 3, res, res) + t["noise"]
        return (img.clamp(0, 1) * 255).round().to(torch.uint8)

    def _background(self, b: int, res: int, g: torch.Generator) -> torch.Tensor:
        """Pink-noise backgrounds (b, 3, res, res) in [0, 1]: random spectral slope, colour."""
        cfg = self.config
        fy = torch.fft.fftfreq(res).reshape(-1, 1)
        fx = torch.fft.rfftfreq(res).reshape(1, -1)
        f = torch.sqrt(fx * fx + fy * fy).clamp_min(1.0 / res)
        lo, hi = cfg.bg_slope
        slope = lo + (hi - lo) * torch.rand(b, 1, 1, 1, generator=g)
        amp = f.pow(-slope)  # (b, 1, res, res//2+1)
        spec_shape = (b, 4, res, res // 2 + 1)
        spec = torch.complex(
            torch.randn(spec_shape, generator=g), torch.randn(spec_shape, generator=g)
        )
        fields = torch.fft.irfft2(spec * amp, s=(res, res))  # (b, 4, res, res)
        fields = fields - fields.mean(dim=(2, 3), keepdim=True)
        fields = fields / fields.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
        # one luminance field shared by all channels + weaker per-channel colour fields
        lum, chroma = fields[:, :1], fields[:, 1:]
        mix = 0.4 * torch.rand(b, 1, 1, 1, generator=g)
        tex = (1 - mix) * lum + mix * chroma
        clo, chi = cfg.bg_contrast
        contrast = clo + (chi - clo) * torch.rand(b, 1, 1, 1, generator=g)
        mean = 0.15 + 0.7 * torch.rand(b, 3, 1, 1, generator=g)
        return mean + contrast * tex


def _rotate(
    x: torch.Tensor, y: torch.Tensor, angle: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate the points (x, y) by ``angle`` radians (broadcasting)."""
    c, s = torch.cos(angle), torch.sin(angle)
    return c * x - s * y, s * x + c * y


def balanced_objects(n: int, seed: int) -> torch.Tensor:
    """``n`` object ids cycling through all 64 objects (as balanced as n allows), shuffled."""
    g = torch.Generator().manual_seed(int(seed))
    ids = torch.arange(n) % NUM_OBJECTS
    return ids[torch.randperm(n, generator=g)]


def _image_set(
    lib: SyntheticObjects,
    n: int,
    resolution: int,
    seed: int,
    label: str,
    split: str,
    device: torch.device | str,
) -> ImageSet:
    objects = balanced_objects(n, seed)
    images = lib.render(objects, resolution=resolution, seed=seed + 1, device=device)
    category = lib.category_of_object[objects]
    if label == "category":
        labels, num_classes, names = category, len(CATEGORY_NAMES), CATEGORY_NAMES
    else:
        labels, num_classes = objects, NUM_OBJECTS
        names = tuple(
            f"{CATEGORY_NAMES[i // OBJECTS_PER_CATEGORY]}_{i % OBJECTS_PER_CATEGORY}"
            for i in range(NUM_OBJECTS)
        )
    return ImageSet(
        images=images,
        labels=labels.clone(),
        num_classes=num_classes,
        name=f"synthetic-{split}",
        groups={"category": category.clone(), "object": objects.clone()},
        class_names=names,
    )


def make_synthetic_objects(
    n_train: int,
    n_val: int,
    n_test: int = 0,
    resolution: int = 32,
    seed: int = 0,
    label: str = "category",
    config: RenderConfig | None = None,
    device: torch.device | str = "cpu",
) -> DataSplits:
    """Train / val (/ test) splits of synthetic objects, deterministic from ``seed``.

    ``label="category"`` gives 8 classes, ``label="object"`` 64; both labelings are always in
    ``groups`` (``"category"``, ``"object"``) for grouped RDMs. Splits share the 64 objects but
    use disjoint random poses and backgrounds.
    """
    if label not in ("category", "object"):
        raise DataError(f"label must be 'category' or 'object', got {label!r}")
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if n < 0:
            raise DataError(f"{name} must be >= 0, got {n}")
    lib = SyntheticObjects(seed, config)
    base = int(seed) * 1_000_003
    train = _image_set(lib, n_train, resolution, base + 11, label, "train", device)
    val = _image_set(lib, n_val, resolution, base + 23, label, "val", device)
    test = _image_set(lib, n_test, resolution, base + 37, label, "test", device) if n_test else None
    return DataSplits(train=train, val=val, test=test)
