"""Limits checked before the browser is touched, with the API's 400 and the parameter named."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

from hcti_build import BadRequestError, CreateOptions, Engine, ImageQuery, Store


@pytest.fixture
def cold(tmp_path: Path) -> Store:
    """A store whose browser has never been launched: a limit must not launch it."""
    return Store(tmp_path / "store", root=tmp_path, engine=Engine())


def refused(store: Store, params: dict[str, object]) -> BadRequestError:
    with pytest.raises(BadRequestError) as err:
        store.create(params)
    assert store.engine.launches == 0 and store.list()["images"] == []
    return err.value


def test_input_size_is_capped(cold: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    err = refused(cold, {"html": "<p>" + "x" * (10 * 1024 * 1024) + "</p>"})
    assert err.param == "html" and err.message.startswith("html and css must be at most 10 MB together, got 10.0 MB")
    err = refused(cold, {"html": "<p>x</p>", "css": "/*" + "é" * (6 * 1024 * 1024) + "*/"})  # bytes, not characters
    assert err.param == "html"
    monkeypatch.setenv("HCTI_MAX_INPUT_MB", "0.001")
    assert "at most 1.02 KB together, got 2.0 KB" in refused(cold, {"html": "<p>" + "x" * 2000 + "</p>"}).message


def test_output_pixels_are_capped(cold: Store) -> None:
    err = refused(cold, {"html": "<p>x</p>", "viewport_width": 5000, "viewport_height": 5000, "device_scale": 3})
    assert err.param == "device_scale" and "15000x15000 pixels; the limit is 100 megapixels and 16384 px per side" in err.message
    err = refused(cold, {"html": "<p>x</p>", "viewport_width": 5000, "viewport_height": 100, "device_scale": 3.5})
    assert err.param == "device_scale" and "between 0.1 and 3" in err.message
    err = refused(cold, {"html": "<p>x</p>", "viewport_width": 5000, "viewport_height": 5001})
    assert err.param == "viewport_height"
    with pytest.raises(BadRequestError) as q:
        ImageQuery.from_mapping({"width": 5001})
    assert q.value.param == "width"
    CreateOptions.from_mapping({"html": "<p>x</p>", "viewport_width": 5000, "viewport_height": 5000})  # 10000x10000: allowed


def test_a_full_screen_page_taller_than_chromium_can_capture_is_refused_before_the_capture(store: Store) -> None:
    with pytest.raises(BadRequestError) as err:
        store.create({"html": "<!DOCTYPE html><body style='margin:0'><div style='height:20000px'></div>", "full_screen": True})
    assert err.value.param == "full_screen" and "3840x40000 pixels" in err.value.message
    assert store.list()["images"] == []


def test_webp_side_limit_is_named(store: Store) -> None:
    image = store.create({"html": "<div style='width:8192px;height:10px;background:#08f'></div>"})  # 16384 px wide
    with pytest.raises(BadRequestError) as err:
        store.get(image["id"], {}, fmt="webp")
    assert err.value.param == "format" and "at most 16383 px per side and this one is 16384x20" in err.value.message
    small = store.get(image["id"], {"width": 4000}, fmt="webp")
    assert small[8:12] == b"WEBP"


def test_pillows_decompression_bomb_guard_stays_on() -> None:
    import hcti_build  # noqa: F401 - importing everything must not switch the guard off
    import hcti_build.api.server  # noqa: F401

    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS <= 89_478_485
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises((Image.DecompressionBombWarning, Image.DecompressionBombError)):
            Image.open(_bomb())


def _bomb() -> object:
    """A tiny PNG whose header claims 30000x30000 pixels."""
    import io
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return io.BytesIO(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
