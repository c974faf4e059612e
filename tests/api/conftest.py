"""Fixtures of the API tests: a fresh MEDIA_ROOT per test, small pools, image factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from image_api.jobs import pools


@pytest.fixture(scope="session", autouse=True)
def _stop_pools_at_session_end() -> Iterator[None]:
    # The pools live for the whole API process; stop them here so pytest exits promptly.
    yield
    pools.shutdown_pools()


@pytest.fixture(autouse=True)
def _api_settings(settings, media_root: Path) -> None:
    settings.THREAD_POOL_SIZE = 2
    settings.PROCESS_POOL_SIZE = 2


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def picture(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """A small BGR test picture with edges and colour (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = rng.integers(0, 256, 3, dtype=np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (255, 255, 255), -1)
    cv2.circle(image, (2 * width // 3, height // 2), max(2, height // 5), (0, 0, 255), -1)
    noise = rng.integers(0, 40, image.shape, dtype=np.uint8)
    return cv2.add(image, noise)


def encode(image: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


@pytest.fixture
def png_bytes() -> Callable[..., bytes]:
    return lambda width=64, height=48, seed=0: encode(picture(width, height, seed), ".png")


@pytest.fixture
def jpeg_bytes() -> Callable[..., bytes]:
    return lambda width=64, height=48, seed=0: encode(picture(width, height, seed), ".jpg")


@pytest.fixture
def bmp_bytes() -> Callable[..., bytes]:
    return lambda width=64, height=48, seed=0: encode(picture(width, height, seed), ".bmp")


# A complete 1x1 GIF: a real image, just not an accepted format.
GIF_BYTES = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@pytest.fixture
def gif_bytes() -> bytes:
    return GIF_BYTES


def as_file(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def make_file() -> Callable[..., SimpleUploadedFile]:
    """An in-memory uploaded file, for multipart requests."""
    return as_file


@pytest.fixture
def upload(api: APIClient) -> Callable[..., list[str]]:
    """Upload files through POST /api/images/; returns their ids."""

    def do_upload(*named: tuple[str, bytes]) -> list[str]:
        files = [as_file(name, data) for name, data in named]
        response = api.post("/api/images/", {"files": files}, format="multipart")
        assert response.status_code == 201, response.content
        return [image["id"] for image in response.json()["images"]]

    return do_upload


@pytest.fixture
def stored_files(media_root: Path) -> Callable[[], list[Path]]:
    """Lists every file under MEDIA_ROOT except the generated samples."""

    def list_files() -> list[Path]:
        return sorted(
            path for path in media_root.rglob("*")
            if path.is_file() and "samples" not in path.relative_to(media_root).parts
        )

    return list_files
