"""Download names keep the user's file names, safely."""

from __future__ import annotations

import pytest

from imaging.names import download_name, unique_names


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("holiday.JPG", "holiday.png"),
        ("IMG 0001.jpeg", "IMG 0001.png"),
        ("../../etc/passwd", "passwd.png"),
        ("C:\\Users\\me\\cat.tiff", "cat.png"),
        ("a<b>c:d\"e|f?g*h.jpg", "a_b_c_d_e_f_g_h.png"),
        (".hidden.jpg", "hidden.png"),
        ("..", "img_1.png"),
        ("", "img_1.png"),
        (None, "img_1.png"),
        ("line\nbreak\x00.jpg", "linebreak.png"),
        ("cafe\u0301.jpg", "caf\u00e9.png"),
        ("x" * 300 + ".jpg", "x" * 100 + ".png"),
        ("no-extension", "no-extension.png"),
    ],
)
def test_download_names_are_the_original_made_safe(original, expected):
    assert download_name(original, "img_1", ".png") == expected


def test_repeated_names_are_numbered_case_insensitively():
    names = ["cat.png", "dog.png", "Cat.png", "cat.png", "cat (2).png"]

    assert unique_names(names) == ["cat.png", "dog.png", "Cat (2).png", "cat (3).png",
                                   "cat (2) (2).png"]
