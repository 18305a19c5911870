from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from hcti_build import Engine, Store


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """One real Chromium for the whole session (launching costs ~0.5 s)."""
    eng = Engine()
    yield eng
    eng.close()


@pytest.fixture
def store(tmp_path: Path, engine: Engine) -> Iterator[Store]:
    st = Store(tmp_path / "store", root=tmp_path, engine=engine)
    yield st
    st.close()


def load(source: bytes | Path) -> Image.Image:
    """Open an image fully and close its file (a leaked handle is a warning, and warnings fail the suite)."""
    import io

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        im.load()
        return im.copy()  # copy() keeps .info (dpi and the rest)
