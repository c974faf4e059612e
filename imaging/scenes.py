"""Synthetic scenes drawn with OpenCV (landscape, city at night, portrait, shapes, seascape,
test chart, forest, badge): deterministic for a seed, nothing downloaded. Used for the sample
images and by the benchmarks."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

__all__ = ["SCENE_KINDS", "make_scene"]

Colour = tuple[int, int, int]
_FONT = cv2.FONT_HERSHEY_SIMPLEX


# --- drawing helpers --------------------------------------------------------------------


def _gradient(height: int, width: int, top: Colour, bottom: Colour) -> np.ndarray:
    """Vertical BGR gradient as float32."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    column = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return np.broadcast_to(column, (height, width, 3)).copy()


def _glow(canvas: np.ndarray, centre: tuple[float, float], radius: float, colour: Colour) -> None:
    """Add a soft radial glow (in place, float canvas)."""
    height, width = canvas.shape[:2]
    ys, xs = np.ogrid[:height, :width]
    distance = np.sqrt((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2, dtype=np.float32)
    weight = np.exp(-distance / radius)[:, :, None]
    canvas += weight * np.array(colour, np.float32)


def _ridge(width: int, base: float, roughness: float, rng: np.random.Generator) -> np.ndarray:
    """Polygon points (int32) of a random-walk ridge line closed along the bottom."""
    count = 48
    xs = np.linspace(0, width, count)
    ys = base + np.cumsum(rng.normal(0, roughness, count))
    ys -= np.linspace(0, ys[-1] - base, count)  # end where it started
    return np.array([[0, 10**6], *np.column_stack((xs, ys)), [width, 10**6]], np.int32)


def _noise(canvas: np.ndarray, sigma: float, rng: np.random.Generator) -> None:
    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(sigma)


def _finish(canvas: np.ndarray) -> np.ndarray:
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _label(image: np.ndarray, text: str, colour: Colour = (255, 255, 255)) -> None:
    height, width = image.shape[:2]
    scale = max(0.4, width / 1400)
    thickness = max(1, round(scale * 2))
    origin = (round(width * 0.03), round(height - height * 0.04))
    cv2.putText(image, text, origin, _FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _tree(image: np.ndarray, x: int, ground: int, size: int, colour: Colour) -> None:
    trunk_w = max(2, size // 8)
    cv2.rectangle(
        image, (x - trunk_w // 2, ground - size // 3), (x + trunk_w // 2, ground), (30, 60, 90), -1
    )
    for level in range(3):
        top = ground - size // 4 - level * size // 4 - size // 2
        half = size // 2 - level * size // 8
        points = np.array([[x, top], [x - half, top + size // 2], [x + half, top + size // 2]])
        cv2.fillPoly(image, [points.astype(np.int32)], colour, cv2.LINE_AA)


# --- scenes -------------------------------------------------------------------------------


def _landscape(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    canvas = _gradient(height, width, (235, 170, 90), (250, 225, 200))
    _glow(canvas, (width * 0.75, height * 0.22), height * 0.12, (40, 120, 160))
    image = _finish(canvas)
    cv2.circle(
        image,
        (round(width * 0.75), round(height * 0.22)),
        round(height * 0.06),
        (120, 230, 255),
        -1,
        cv2.LINE_AA,
    )
    cv2.fillPoly(
        image, [_ridge(width, height * 0.45, height * 0.03, rng)], (120, 110, 110), cv2.LINE_AA
    )
    cv2.fillPoly(
        image, [_ridge(width, height * 0.55, height * 0.02, rng)], (90, 120, 80), cv2.LINE_AA
    )
    xs = np.arange(width)
    hill = height * 0.68 + height * 0.04 * np.sin(xs / width * 2 * np.pi * 1.5)
    points = np.array([[0, height], *np.column_stack((xs, hill)), [width, height]], np.int32)
    cv2.fillPoly(image, [points], (60, 160, 90), cv2.LINE_AA)
    ground = image.astype(np.float32)
    _noise(ground[round(height * 0.62) :], 10.0, rng)
    image = _finish(ground)
    for x in sorted(rng.integers(0, width, 18)):
        _tree(
            image,
            int(x),
            round(height * 0.74 + rng.integers(0, height // 8)),
            int(rng.integers(height // 10, height // 6)),
            (40, 110, 40),
        )
    # A house: walls, roof, door and two windows.
    hx, hy, hw = round(width * 0.32), round(height * 0.72), round(width * 0.1)
    cv2.rectangle(image, (hx, hy - hw * 2 // 3), (hx + hw, hy), (170, 200, 230), -1)
    roof = np.array(
        [
            [hx - hw // 10, hy - hw * 2 // 3],
            [hx + hw // 2, hy - hw * 11 // 10],
            [hx + hw + hw // 10, hy - hw * 2 // 3],
        ],
        np.int32,
    )
    cv2.fillPoly(image, [roof], (40, 40, 150), cv2.LINE_AA)
    cv2.rectangle(
        image, (hx + hw * 2 // 5, hy - hw * 2 // 5), (hx + hw * 3 // 5, hy), (30, 60, 100), -1
    )
    for wx in (hx + hw // 10, hx + hw * 7 // 10):
        cv2.rectangle(
            image, (wx, hy - hw // 2), (wx + hw // 5, hy - hw * 3 // 10), (240, 220, 150), -1
        )
    _label(image, "Sample landscape")
    return image


def _city_night(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    canvas = _gradient(height, width, (40, 10, 5), (90, 40, 30))
    _glow(canvas, (width * 0.15, height * 0.15), height * 0.08, (60, 60, 60))
    image = _finish(canvas)
    stars = rng.integers(0, [width, height // 2], size=(width // 8, 2))
    image[stars[:, 1], stars[:, 0]] = (230, 240, 255)
    cv2.circle(
        image,
        (round(width * 0.15), round(height * 0.15)),
        round(height * 0.05),
        (210, 235, 245),
        -1,
        cv2.LINE_AA,
    )
    x = 0
    while x < width:
        bw = int(rng.integers(width // 20, width // 9))
        top = int(rng.integers(height // 4, height * 2 // 3))
        shade = int(rng.integers(25, 60))
        cv2.rectangle(image, (x, top), (x + bw - 2, height), (shade + 15, shade, shade), -1)
        # Windows: a grid over the building, about 40 % lit.
        block = image[top + 6 : height - 6, x + 4 : x + bw - 6]
        rows, cols = np.mgrid[: block.shape[0], : block.shape[1]]
        window = (rows % 14 < 7) & (cols % 10 < 5)
        lit = rng.random((block.shape[0] // 14 + 1, block.shape[1] // 10 + 1)) < 0.4
        mask = window & lit[rows // 14, cols // 10]
        block[mask] = (120, 210, 250)
        x += bw
    _label(image, "City at night", (200, 220, 255))
    return image


def _portrait(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    canvas = _gradient(height, width, (140, 120, 100), (80, 70, 60))
    for _ in range(12):  # out-of-focus background lights
        centre = (float(rng.uniform(0, width)), float(rng.uniform(0, height * 0.6)))
        _glow(canvas, centre, width * 0.03, (30, 40, 50))
    image = _finish(canvas)
    cx, cy = width // 2, round(height * 0.42)
    face = (round(width * 0.2), round(height * 0.19))
    cv2.ellipse(
        image,
        (cx, height),
        (round(width * 0.42), round(height * 0.25)),
        0,
        180,
        360,
        (90, 60, 150),
        -1,
        cv2.LINE_AA,
    )
    cv2.rectangle(
        image,
        (cx - face[0] // 3, cy + face[1] - 10),
        (cx + face[0] // 3, round(height * 0.8)),
        (150, 180, 220),
        -1,
    )
    cv2.ellipse(
        image,
        (cx, cy - face[1] // 5),
        (face[0] + 12, face[1] + 8),
        0,
        0,
        360,
        (30, 40, 60),
        -1,
        cv2.LINE_AA,
    )
    cv2.ellipse(image, (cx, cy), face, 0, 0, 360, (160, 190, 230), -1, cv2.LINE_AA)
    for side in (-1, 1):
        eye = (cx + side * face[0] * 2 // 5, cy - face[1] // 6)
        cv2.ellipse(
            image, eye, (face[0] // 6, face[1] // 12), 0, 0, 360, (250, 250, 250), -1, cv2.LINE_AA
        )
        cv2.circle(image, eye, face[1] // 14, (70, 50, 30), -1, cv2.LINE_AA)
    cv2.line(
        image,
        (cx, cy - face[1] // 12),
        (cx - face[0] // 10, cy + face[1] // 4),
        (110, 140, 190),
        2,
        cv2.LINE_AA,
    )
    cv2.ellipse(
        image,
        (cx, cy + face[1] // 2),
        (face[0] // 3, face[1] // 8),
        0,
        10,
        170,
        (80, 80, 180),
        3,
        cv2.LINE_AA,
    )
    _label(image, "Portrait")
    return image


def _shapes(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    image = np.full((height, width, 3), 245, np.uint8)
    square = max(4, width // 40)
    ys, xs = np.mgrid[: height // 4, : width // 4]
    checker = ((ys // square + xs // square) % 2).astype(bool)
    image[: height // 4, : width // 4][checker] = (40, 40, 40)
    for _ in range(14):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(height // 16, height // 5))
        if kind == 0:
            cv2.circle(image, (x, y), size, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(image, (x, y), (x + size, y + size * 2 // 3), colour, -1)
        else:
            points = np.array([[x, y - size], [x - size, y + size], [x + size, y + size]])
            cv2.fillPoly(image, [points.astype(np.int32)], colour, cv2.LINE_AA)
    for i in range(8):
        cv2.line(
            image,
            (0, height - 1 - i * height // 16),
            (width - 1, height // 2 + i * 9),
            (200, 60 + i * 20, 20),
            2,
            cv2.LINE_AA,
        )
    _label(image, "Shapes", (30, 30, 30))
    return image


def _seascape(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    horizon = round(height * 0.5)
    canvas = _gradient(height, width, (200, 150, 110), (230, 210, 255))
    _glow(canvas, (width * 0.5, horizon - height * 0.05), height * 0.1, (60, 140, 200))
    ys, xs = np.mgrid[: height - horizon, :width].astype(np.float32)
    depth = (ys + 1) / (height - horizon)
    waves = np.sin(xs / (8 + 60 * depth) + ys / (2 + 10 * depth)) * 18 * depth
    sea = np.stack((150 + waves, 100 + waves * 0.8, 40 + waves * 0.3), axis=-1)
    canvas[horizon:] = sea * (0.7 + 0.3 * depth[..., None])
    _noise(canvas[horizon:], 4.0, rng)
    image = _finish(canvas)
    sand = np.array(
        [
            [0, height],
            [0, round(height * 0.88)],
            [width // 3, round(height * 0.85)],
            [width, round(height * 0.93)],
            [width, height],
        ],
        np.int32,
    )
    cv2.fillPoly(image, [sand], (150, 200, 230), cv2.LINE_AA)
    bx, by = round(width * 0.62), round(height * 0.62)
    hull = np.array([[bx - 60, by], [bx + 60, by], [bx + 40, by + 18], [bx - 40, by + 18]])
    cv2.fillPoly(image, [hull.astype(np.int32)], (40, 40, 60), cv2.LINE_AA)
    sail = np.array([[bx, by - 90], [bx, by - 4], [bx + 50, by - 4]])
    cv2.fillPoly(image, [sail.astype(np.int32)], (245, 245, 245), cv2.LINE_AA)
    _label(image, "Seascape")
    return image


def _test_chart(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    bars = [
        (255, 255, 255),
        (0, 255, 255),
        (255, 255, 0),
        (0, 255, 0),
        (255, 0, 255),
        (0, 0, 255),
        (255, 0, 0),
        (0, 0, 0),
    ]
    bar_w = width // len(bars)
    for i, colour in enumerate(bars):
        image[: height // 2, i * bar_w : (i + 1) * bar_w] = colour
    ramp = np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8)
    image[height // 2 : height * 5 // 8] = ramp[None, :, None]
    stripes = (np.arange(width) // np.maximum(1, np.arange(width) * 4 // width + 1)) % 2
    image[height * 5 // 8 : height * 3 // 4] = (stripes * 255).astype(np.uint8)[None, :, None]
    image[height * 3 // 4 :] = (
        rng.integers(0, 256, (height - height * 3 // 4, width, 3), dtype=np.uint8) // 2 + 64
    )
    cv2.circle(image, (width // 2, height // 4), height // 5, (128, 128, 128), 3, cv2.LINE_AA)
    _label(image, "Test chart 0123456789")
    return image


def _forest(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    canvas = _gradient(height, width, (200, 210, 170), (60, 110, 60))
    _noise(canvas, 6.0, rng)
    image = _finish(canvas)
    path = np.array(
        [
            [width * 0.45, height * 0.55],
            [width * 0.55, height * 0.55],
            [width * 0.8, height],
            [width * 0.2, height],
        ],
        np.int32,
    )
    cv2.fillPoly(image, [path], (90, 140, 170), cv2.LINE_AA)
    for depth in range(4):
        shade = (30 + depth * 10, 70 + depth * 25, 30 + depth * 8)
        for x in rng.integers(0, width, 12):
            ground = round(height * (0.5 + depth * 0.13))
            _tree(image, int(x), ground, round(height * (0.12 + depth * 0.08)), shade)
    _label(image, "Forest")
    return image


def _badge(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    centre = (width // 2, height // 2)
    radius = min(width, height) // 2 - 4
    cv2.circle(image, centre, radius, (40, 120, 220), -1, cv2.LINE_AA)
    cv2.circle(image, centre, radius * 4 // 5, (60, 200, 250), -1, cv2.LINE_AA)
    angles = np.linspace(-np.pi / 2, 3 * np.pi / 2, 11)[:-1]
    lengths = np.where(np.arange(10) % 2 == 0, radius * 0.65, radius * 0.28)
    star = np.column_stack(
        (centre[0] + lengths * np.cos(angles), centre[1] + lengths * np.sin(angles))
    )
    cv2.fillPoly(image, [star.astype(np.int32)], (255, 255, 255), cv2.LINE_AA)
    return image


_SCENES: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "landscape": _landscape,
    "city-night": _city_night,
    "portrait": _portrait,
    "shapes": _shapes,
    "seascape": _seascape,
    "test-chart": _test_chart,
    "forest": _forest,
    "badge": _badge,
}
SCENE_KINDS: tuple[str, ...] = tuple(_SCENES)


def make_scene(width: int, height: int, seed: int = 0, *, kind: str | None = None) -> np.ndarray:
    """A deterministic synthetic BGR scene (uint8 ``height x width x 3``).

    ``kind`` is one of SCENE_KINDS; by default it is picked from ``seed``.
    """
    if width < 16 or height < 16:
        raise ValueError("scenes are at least 16x16 pixels")
    name = kind if kind is not None else SCENE_KINDS[seed % len(SCENE_KINDS)]
    if name not in _SCENES:
        raise ValueError(f"unknown scene kind {name!r} (choose from {list(SCENE_KINDS)})")
    return _SCENES[name](width, height, np.random.default_rng(seed))
