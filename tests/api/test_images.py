"""POST /api/images/, GET /api/images/, GET /api/images/<id>/."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_uploading_a_png_stores_it_and_returns_its_metadata(api, make_file, png_bytes) -> None:
    data = png_bytes(64, 48)

    response = api.post("/api/images/", {"files": [make_file("cat.png", data)]}, format="multipart")

    assert response.status_code == 201
    (image,) = response.json()["images"]
    assert image["id"].startswith("img_")
    assert (image["format"], image["width"], image["height"]) == ("png", 64, 48)
    assert image["bytes"] == len(data)
    assert image["original_name"] == "cat.png"
    stored = api.get(f"/api/images/{image['id']}/")
    assert stored.status_code == 200
    assert stored["Content-Type"] == "image/png"
    assert b"".join(stored.streaming_content) == data


def test_files_under_every_accepted_field_name_are_stored(
    api, make_file, png_bytes, jpeg_bytes
) -> None:
    body = {
        "files": [make_file("a.png", png_bytes(seed=1)), make_file("b.jpg", jpeg_bytes(seed=2))],
        "file": make_file("c.png", png_bytes(seed=3)),
        "images": make_file("d.png", png_bytes(seed=4)),
        "image": make_file("e.jpg", jpeg_bytes(seed=5)),
    }

    response = api.post("/api/images/", body, format="multipart")

    assert response.status_code == 201
    images = response.json()["images"]
    assert [i["original_name"] for i in images] == ["a.png", "b.jpg", "c.png", "d.png", "e.jpg"]
    assert [i["format"] for i in images] == ["png", "jpeg", "png", "png", "jpeg"]


def test_image_bytes_are_served_whatever_the_accept_header(api, upload, jpeg_bytes) -> None:
    data = jpeg_bytes()
    (image_id,) = upload(("photo.jpg", data))

    response = api.get(f"/api/images/{image_id}/", HTTP_ACCEPT="image/jpeg")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == data


@pytest.mark.parametrize(
    ("name", "payload"),
    [("anim.gif", "gif"), ("notes.txt", b"just some text, not an image\n")],
)
def test_unsupported_file_is_rejected_with_415_naming_it(
    api, make_file, gif_bytes, stored_files, name, payload
) -> None:
    data = gif_bytes if payload == "gif" else payload

    response = api.post("/api/images/", {"files": [make_file(name, data)]}, format="multipart")

    assert response.status_code == 415
    body = response.json()
    assert body["error"] == "unsupported_media_type"
    assert body["file"] == {"index": 0, "name": name}
    assert name in body["message"]
    assert stored_files() == []


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_truncated_image_is_rejected_with_400(
    api, make_file, jpeg_bytes, png_bytes, stored_files, kind
) -> None:
    data = (jpeg_bytes if kind == "jpeg" else png_bytes)(64, 48)
    truncated = data[: len(data) * 2 // 3]

    response = api.post(
        "/api/images/", {"files": [make_file(f"half.{kind}", truncated)]}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["error"] == "corrupt_image"
    assert stored_files() == []


def test_empty_file_is_rejected_with_400(api, make_file) -> None:
    response = api.post("/api/images/", {"files": [make_file("empty.png", b"")]},
                        format="multipart")

    assert response.status_code == 400
    assert response.json()["error"] == "empty_file"


@pytest.mark.parametrize("fmt", ["multipart", "json"])
def test_upload_without_files_is_rejected_with_400(api, fmt) -> None:
    body = {"comment": "no files here"}

    response = api.post("/api/images/", body, format=fmt)

    assert response.status_code == 400
    assert response.json()["error"] == "no_files"


def test_file_under_an_unknown_field_name_is_rejected(api, make_file, png_bytes) -> None:
    response = api.post("/api/images/", {"picture": make_file("a.png", png_bytes())},
                        format="multipart")

    assert response.status_code == 400
    assert response.json()["error"] == "unexpected_file_field"
    assert response.json()["fields"] == ["picture"]


def test_file_over_max_upload_bytes_is_rejected_with_413(
    api, settings, make_file, png_bytes, stored_files
) -> None:
    data = png_bytes(64, 48)
    settings.MAX_UPLOAD_BYTES = len(data) - 1

    response = api.post("/api/images/", {"files": [make_file("big.png", data)]},
                        format="multipart")

    assert response.status_code == 413
    assert response.json()["error"] == "file_too_large"
    assert stored_files() == []


def test_image_over_max_pixels_is_rejected_with_413(
    api, settings, make_file, png_bytes, stored_files
) -> None:
    settings.MAX_IMAGE_PIXELS = 64 * 48 - 1

    response = api.post("/api/images/", {"files": [make_file("wide.png", png_bytes(64, 48))]},
                        format="multipart")

    assert response.status_code == 413
    assert response.json()["error"] == "too_many_pixels"
    assert stored_files() == []


def test_one_bad_file_in_a_batch_means_none_is_stored(
    api, make_file, png_bytes, gif_bytes, stored_files
) -> None:
    files = [
        make_file("good-1.png", png_bytes(seed=1)),
        make_file("bad.gif", gif_bytes),
        make_file("good-2.png", png_bytes(seed=2)),
    ]

    response = api.post("/api/images/", {"files": files}, format="multipart")

    assert response.status_code == 415
    assert response.json()["file"] == {"index": 1, "name": "bad.gif"}
    assert stored_files() == []
    listed = api.get("/api/images/").json()["images"]
    assert [i for i in listed if i["kind"] == "upload"] == []


def test_image_list_shows_uploads_first_then_samples(api, upload, png_bytes) -> None:
    first, second = upload(("one.png", png_bytes(seed=1)), ("two.png", png_bytes(seed=2)))

    response = api.get("/api/images/")

    assert response.status_code == 200
    images = response.json()["images"]
    uploads = [i for i in images if i["kind"] == "upload"]
    samples = [i for i in images if i["kind"] == "sample"]
    assert {i["id"] for i in uploads} == {first, second}
    assert samples and all(i["id"].startswith("sample-") for i in samples)
    assert images == uploads + samples
    for image in uploads + samples[:1]:
        assert image["url"].endswith(f"/api/images/{image['id']}/")
        assert {"format", "width", "height", "bytes"} <= image.keys()


def test_sample_image_bytes_are_served(api) -> None:
    sample = next(i for i in api.get("/api/images/").json()["images"] if i["kind"] == "sample")

    response = api.get(f"/api/images/{sample['id']}/")

    assert response.status_code == 200
    assert response["Content-Type"] == f"image/{sample['format']}"
    assert len(b"".join(response.streaming_content)) == sample["bytes"]


@pytest.mark.parametrize(
    "image_id", ["img_0123456789abcdef0123456789abcdef", "sample-nope", "..%2F..%2Fetc", "x"]
)
def test_unknown_or_malformed_image_id_answers_json_404(api, image_id) -> None:
    response = api.get(f"/api/images/{image_id}/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] in {"image_not_found", "not_found"}
