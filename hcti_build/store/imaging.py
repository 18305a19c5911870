"""Pure image functions: a master PNG plus an image query gives the final bytes (crop, resize, encode, DPI).

Crop rules, from the seed's examples: a percentage is of the image's width (x) or height (y); a negative
coordinate counts back from the far edge; a region given only by its size is centred on ``x_origin`` /
``y_origin`` (default 50%) and kept inside the image; ``aspect_ratio`` derives the missing side from the
given one, or takes the largest region of that ratio when neither side is given.
"""

from __future__ import annotations

import io

from PIL import Image

from ..errors import BadRequestError
from ..options import WEBP_MAX_SIDE, ImageQuery, Length


def _axis(
    extent: int, start: Length | None, end: Length | None, size: float | None, origin: Length | None, axis: str, name: str
) -> tuple[int, int]:
    if start is not None and end is not None:
        a, b = start.position(extent), end.position(extent)
    elif start is not None:
        a = start.position(extent)
        b = a + size if size is not None else extent
    else:
        length = extent if size is None else size
        centre = origin.position(extent) if origin is not None else extent / 2
        a = min(max(centre - length / 2, 0), max(extent - length, 0))
        b = a + length
    lo, hi = max(0, round(a)), min(extent, round(b))
    if hi <= lo:
        side = "wide" if axis == "x" else "high"
        raise BadRequestError(f"The crop region along {axis} is empty for an image {extent}px {side}", param=name)
    return lo, hi


def crop_box(width: int, height: int, q: ImageQuery) -> tuple[int, int, int, int]:
    """The crop region (left, top, right, bottom) in pixels for an image of the given size."""
    cw = q.crop_width.size(width) if q.crop_width is not None else None
    ch = q.crop_height.size(height) if q.crop_height is not None else None
    if q.x_1 is not None and q.x_2 is not None:
        cw = q.x_2.position(width) - q.x_1.position(width)
    if q.y_1 is not None and q.y_2 is not None:
        ch = q.y_2.position(height) - q.y_1.position(height)
    if q.aspect_ratio is not None:
        rw, rh = q.aspect_ratio
        if cw is None and ch is None:
            cw, ch = (width, width * rh / rw) if width * rh / rw <= height else (height * rw / rh, height)
        elif cw is None:
            assert ch is not None
            cw = ch * rw / rh
        elif ch is None:
            ch = cw * rh / rw
    left, right = _axis(width, q.x_1, q.x_2, cw, q.x_origin, "x", _given(q, "x_1", "x_2", "crop_width", "x_origin"))
    top, bottom = _axis(height, q.y_1, q.y_2, ch, q.y_origin, "y", _given(q, "y_1", "y_2", "crop_height", "y_origin"))
    return left, top, right, bottom


def _given(q: ImageQuery, *names: str) -> str:
    """The parameter an empty region is named by: the first of ``names`` given, else the aspect ratio."""
    return next((n for n in names if getattr(q, n) is not None), "aspect_ratio")


def transform(master: Image.Image, q: ImageQuery) -> Image.Image:
    """Crop, then resize. Returns a new image (or the master itself when nothing applies)."""
    img = master
    if q.has_crop:
        box = crop_box(img.width, img.height, q)
        if box != (0, 0, img.width, img.height):
            img = img.crop(box)
    if q.width is not None or q.height is not None:
        w = q.width if q.width is not None else max(1, round(img.width * q.height / img.height))  # type: ignore[operator]
        h = q.height if q.height is not None else max(1, round(img.height * w / img.width))
        if (w, h) != img.size:
            img = img.resize((w, h), Image.Resampling.LANCZOS)
    return img


def encode(img: Image.Image, fmt: str, dpi: int | None = None) -> bytes:
    """Encode to png/jpg/webp/pdf (raster), writing ``dpi`` as the format's own resolution metadata."""
    buf = io.BytesIO()
    if fmt == "png":
        kw: dict[str, object] = {"compress_level": 6}
        if dpi:
            kw["dpi"] = (dpi, dpi)
        img.save(buf, "PNG", **kw)
    elif fmt == "jpg":
        flat = _flatten(img)
        flat.save(buf, "JPEG", quality=90, dpi=(dpi, dpi) if dpi else (72, 72))
    elif fmt == "webp":
        exif = Image.Exif()
        if dpi:
            # WebP has no resolution field of its own: EXIF XResolution/YResolution/ResolutionUnit(inch).
            exif[0x011A] = exif[0x011B] = float(dpi)
            exif[0x0128] = 2
        img.save(buf, "WEBP", quality=90, method=4, exif=exif.tobytes() if dpi else b"")
    elif fmt == "pdf":
        # A raster page sized by the DPI (96 when none is given, CSS's px).
        _flatten(img).save(buf, "PDF", resolution=float(dpi or 96))
    else:  # pragma: no cover - formats are validated by options.parse_format
        raise BadRequestError(f"Unknown format {fmt}", param="format")
    return buf.getvalue()


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return img.convert("RGB") if img.mode != "RGB" else img


def apply(master_png: bytes, q: ImageQuery) -> bytes:
    """Master PNG bytes + query -> final bytes."""
    if q.is_identity:
        return master_png
    with Image.open(io.BytesIO(master_png)) as master:
        master.load()
        out = transform(master, q)
        if q.format == "webp" and max(out.size) > WEBP_MAX_SIDE:
            raise BadRequestError(
                f"webp images are at most {WEBP_MAX_SIDE} px per side and this one is {out.width}x{out.height}: "
                "ask for a width or height, or use png",
                param="format",
            )
        return encode(out, q.format, q.dpi)
