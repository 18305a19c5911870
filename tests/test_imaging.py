"""The seed's five cropping examples on a 600x400 image, pixel-exact, plus resize/encode/DPI."""

from __future__ import annotations

import io

import pytest
from conftest import load
from PIL import Image  # noqa: F401

from hcti_build import BadRequestError, ImageQuery, UnsupportedFormatError
from hcti_build.store.imaging import apply, crop_box


def _q(qs: str) -> ImageQuery:
    return ImageQuery.parse("id?" + qs)[1]


@pytest.mark.parametrize(
    ("qs", "box"),
    [
        ("aspect_ratio=1_1&crop_height=100%", (100, 0, 500, 400)),  # centred square
        ("x_1=0&crop_width=33%", (0, 0, 198, 400)),  # left third
        ("x_1=33%&x_2=66%", (198, 0, 396, 400)),  # centre third
        ("x_1=-33%&crop_width=33%", (402, 0, 600, 400)),  # right third
        ("aspect_ratio=16_9&crop_width=100%", (0, 31, 600, 369)),  # 600x338, centred
        ("x_1=100px&y_1=50&crop_width=200px&crop_height=100", (100, 50, 300, 150)),
        ("crop_width=100&x_origin=0", (0, 0, 100, 400)),  # kept inside the image
        ("crop_height=100&y_origin=-1", (0, 300, 600, 400)),
    ],
)
def test_crop_regions(qs: str, box: tuple[int, int, int, int]) -> None:
    assert crop_box(600, 400, _q(qs)) == box


def _striped() -> bytes:
    """600x400: each 100px column band a different colour, so a crop's edges are visible in its pixels."""
    img = Image.new("RGB", (600, 400))
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    for i, c in enumerate(colours):
        img.paste(c, (i * 100, 0, i * 100 + 100, 400))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_right_third_pixels() -> None:
    out = load(apply(_striped(), _q("x_1=-33%&crop_width=33%")))
    assert out.size == (198, 400)
    assert out.getpixel((0, 0)) == (0, 255, 255)  # x=402 of the source: the 5th band (400-499)
    assert out.getpixel((197, 399)) == (255, 0, 255)  # the last band


def test_resize_keeps_aspect_and_exact() -> None:
    assert load(apply(_striped(), _q("width=300"))).size == (300, 200)
    assert load(apply(_striped(), _q("height=100"))).size == (150, 100)
    assert load(apply(_striped(), _q("width=50&height=50"))).size == (50, 50)
    # crop first, then resize
    assert load(apply(_striped(), _q("aspect_ratio=1_1&width=64"))).size == (64, 64)


@pytest.mark.parametrize(("fmt", "magic"), [("png", b"\x89PNG"), ("jpg", b"\xff\xd8\xff"), ("pdf", b"%PDF")])
def test_formats_and_dpi(fmt: str, magic: bytes) -> None:
    data = apply(_striped(), ImageQuery.from_mapping({"dpi": "300"}, fmt))
    assert data.startswith(magic)
    if fmt != "pdf":
        assert round(load(data).info["dpi"][0]) == 300


def test_webp_dpi_in_exif() -> None:
    data = apply(_striped(), ImageQuery.from_mapping({"dpi": 144}, "webp"))
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    exif = load(data).getexif()
    assert float(exif[0x011A]) == 144 and exif[0x0128] == 2


def test_raster_pdf_page_sized_by_dpi() -> None:
    data = apply(_striped(), ImageQuery.from_mapping({"dpi": 300, "width": 600}, "pdf"))
    # 600 px at 300 dpi = 2 in = 144 pt wide
    assert b"/MediaBox [ 0 0 144.0 96.0 ]" in data


@pytest.mark.parametrize(
    ("query", "param", "words"),
    [
        ({"width": "0"}, "width", "between 1 and 5000"),
        ({"height": "5001"}, "height", "between 1 and 5000"),
        ({"dpi": "29"}, "dpi", "between 30 and 600"),
        ({"width": "abc"}, "width", "integer"),
        ({"x_2": "10"}, "x_2", "must be used with x_1"),
        ({"x_1": "1", "x_2": "5", "crop_width": "3"}, "crop_width", "cannot be used together"),
        ({"aspect_ratio": "16x9"}, "aspect_ratio", "16_9"),
        ({"x_1": "12em"}, "x_1", "pixels"),
        ({"colour": "red"}, "colour", "Unknown"),
    ],
)
def test_bad_queries_name_the_parameter(query: dict[str, str], param: str, words: str) -> None:
    with pytest.raises(BadRequestError) as err:
        ImageQuery.from_mapping(query)
    assert err.value.param == param and words in err.value.message
    assert err.value.to_json()["statusCode"] == 400


def test_unknown_format_is_the_seeds_422() -> None:
    with pytest.raises(UnsupportedFormatError) as err:
        ImageQuery.parse("abc.gif")
    assert err.value.status_code == 422
    assert err.value.message == ("Sorry, we do not currently support that format. Valid image types are: jpg, webp or png")


def test_empty_crop_is_an_error() -> None:
    with pytest.raises(BadRequestError):
        crop_box(600, 400, _q("x_1=600&crop_width=10"))
