"""The built-in sample images: synthetic scenes drawn with OpenCV, nothing downloaded.

``render_sample(spec)`` encodes one (deterministically: every caller produces the same bytes);
``imaging.storage.ensure_samples`` writes the set. ``make_scene`` is reused by the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imaging.codecs import EXTENSIONS, encode_image
from imaging.scenes import SCENE_KINDS, make_scene

__all__ = [
    "SAMPLES",
    "SCENE_KINDS",
    "SampleSpec",
    "make_scene",
    "render_sample",
]

@dataclass(frozen=True)
class SampleSpec:
    """One sample image: file ``<slug><ext>``, id ``sample-<slug>``."""

    slug: str
    kind: str
    width: int
    height: int
    format: str  # "jpeg" or "png"
    seed: int
    alpha: bool = False

    @property
    def filename(self) -> str:
        return f"{self.slug}{EXTENSIONS[self.format]}"


SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec("landscape", "landscape", 1920, 1080, "jpeg", seed=1),
    SampleSpec("city-night", "city-night", 1280, 720, "jpeg", seed=2),
    SampleSpec("portrait", "portrait", 600, 800, "jpeg", seed=3),
    SampleSpec("shapes", "shapes", 800, 600, "png", seed=4),
    SampleSpec("seascape", "seascape", 1280, 720, "jpeg", seed=5),
    SampleSpec("test-chart", "test-chart", 640, 480, "png", seed=6),
    SampleSpec("forest", "forest", 1024, 768, "jpeg", seed=7),
    SampleSpec("badge", "badge", 512, 512, "png", seed=8, alpha=True),
)


def render_sample(spec: SampleSpec) -> bytes:
    """The encoded bytes of one sample (deterministic: same spec, same bytes)."""
    image = make_scene(spec.width, spec.height, spec.seed, kind=spec.kind)
    if spec.alpha:
        # Transparent outside the badge's disc, with an anti-aliased rim.
        alpha = np.zeros((spec.height, spec.width), np.uint8)
        radius = min(spec.width, spec.height) // 2 - 4
        cv2.circle(alpha, (spec.width // 2, spec.height // 2), radius, 255, -1, cv2.LINE_AA)
        image = np.dstack((image, alpha))
    return encode_image(image, spec.format, quality=90)
