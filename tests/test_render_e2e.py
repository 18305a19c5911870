"""Real Chromium, end to end: sizes, auto-crop, viewport, selector, transparency, colour scheme, PDF."""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path

import pytest
from conftest import browser_pids, cmdline, load
from PIL import Image

from hcti_build import BadRequestError, CreateOptions, Engine, Store
from hcti_build.engine.rendering import DYNAMIC as _DYNAMIC


def _img(store: Store, **params: object) -> Image.Image:
    image_id = store.create(params)["id"]
    return load(store.get(image_id))


def test_snippet_autocrops_to_element_with_margins(store: Store) -> None:
    im = _img(store, html='<div style="width:300px;height:200px;margin:10px;background:#f00"></div>')
    assert im.size == (640, 440)  # (300+20) x (200+20) CSS px at the default device_scale 2
    assert im.convert("RGB").getpixel((320, 220)) == (255, 0, 0)
    assert im.convert("RGB").getpixel((5, 5)) == (255, 255, 255)  # the margin is page background


def test_device_scale_and_css(store: Store) -> None:
    im = _img(store, html='<div class="b"></div>', css=".b{width:100px;height:50px;background:#00f}", device_scale=1)
    assert im.size == (100, 50)
    assert im.convert("RGB").getpixel((50, 25)) == (0, 0, 255)


def test_full_page_renders_viewport(store: Store) -> None:
    im = _img(store, html="<!DOCTYPE html><html><body style='background:#0f0'></body></html>", device_scale=1)
    assert im.size == (1920, 1080)
    assert im.convert("RGB").getpixel((1900, 1000)) == (0, 255, 0)


def test_viewport_disables_autocrop(store: Store) -> None:
    im = _img(store, html="<p>x</p>", viewport_width=400, viewport_height=300, device_scale=1)
    assert im.size == (400, 300)


def test_selector(store: Store) -> None:
    im = _img(
        store,
        html="<div><span id=s style='display:inline-block;width:40px;height:30px;background:#f00'></span> text</div>",
        selector="#s",
        device_scale=1,
    )
    assert im.size == (40, 30)
    with pytest.raises(BadRequestError) as err:
        store.create({"html": "<p>x</p>", "selector": "#missing"})
    assert err.value.param == "selector"


def test_transparent_background(store: Store) -> None:
    im = _img(
        store,
        html="<div style='width:20px;height:20px;margin:5px;background:#f00'></div>",
        transparent_background=True,
        device_scale=1,
    )
    assert im.mode == "RGBA"
    assert im.getpixel((1, 1))[3] == 0  # margin: transparent
    assert im.getpixel((15, 15)) == (255, 0, 0, 255)


def test_color_scheme_dark(store: Store) -> None:
    css = "div{width:10px;height:10px;background:#fff}@media (prefers-color-scheme: dark){div{background:#000}}"
    assert _img(store, html="<div></div>", css=css, color_scheme="dark").convert("RGB").getpixel((5, 5)) == (0, 0, 0)
    assert _img(store, html="<div></div>", css=css).convert("RGB").getpixel((5, 5)) == (255, 255, 255)


def test_timezone(store: Store) -> None:
    html = (
        "<div id=t style='font:20px monospace'></div><script>document.getElementById('t').textContent="
        "Intl.DateTimeFormat().resolvedOptions().timeZone</script>"
    )
    a = store.create({"html": html, "timezone": "Asia/Tokyo"})["id"]
    b = store.create({"html": html, "timezone": "America/Lima"})["id"]
    assert a != b and store.get(a) != store.get(b)


def test_render_when_ready_waits(store: Store) -> None:
    html = (
        "<div id=d style='width:10px;height:10px;background:#fff'></div><script>setTimeout(()=>{"
        "document.getElementById('d').style.background='#0f0'; ScreenshotReady()}, 300)</script>"
    )
    im = _img(store, html=html, render_when_ready=True, device_scale=1)
    assert im.convert("RGB").getpixel((5, 5)) == (0, 255, 0)


def test_local_files_are_served_and_hashed(store: Store, tmp_path: Path) -> None:
    css = tmp_path / "style.css"
    css.write_text(".c{width:30px;height:30px;background:#f00}")
    html = "<link rel=stylesheet href='style.css'><div class=c></div>"
    first = store.create({"html": html, "device_scale": 1})["id"]
    assert store.create({"html": html, "device_scale": 1})["id"] == first
    launches = store.engine.launches
    css.write_text(".c{width:30px;height:30px;background:#00f}")
    second = store.create({"html": html, "device_scale": 1})["id"]
    assert second != first
    assert load(store.get(second)).convert("RGB").getpixel((15, 15)) == (0, 0, 255)
    assert store.engine.launches == launches


def test_no_network_by_default(store: Store) -> None:
    html = "<img src='https://example.invalid/x.png' width=10 height=10 style='background:#0f0'>"
    im = _img(store, html=html, device_scale=1)  # the request is refused, the render still completes
    assert im.size[0] >= 10


def test_vector_pdf_and_raster_variants(store: Store) -> None:
    image_id = store.create({"html": "<h1 style='margin:0;width:300px'>Hello PDF</h1>"})["id"]
    pdf = store.get(image_id, fmt="pdf")
    assert pdf.startswith(b"%PDF") and b"/Font" in pdf  # text stays vector
    jpg = store.get(image_id, {"width": 150}, fmt="jpg")
    assert jpg.startswith(b"\xff\xd8") and load(jpg).width == 150
    webp = store.get(image_id, fmt="webp")
    assert webp[8:12] == b"WEBP"


def test_deadline(store: Store) -> None:
    from hcti_build import RenderTimeoutError

    with pytest.raises(RenderTimeoutError):
        store.create({"html": "<p>never</p>", "render_when_ready": True, "max_wait_ms": 300})
    assert store.create({"html": "<p>fine</p>"})["id"]  # the next render is fine


def test_public_render_helper(tmp_path: Path, engine: object) -> None:
    import hcti_build

    st = Store(tmp_path / "s", root=tmp_path, engine=engine)  # type: ignore[arg-type]
    data = hcti_build.render(st, html="<b>x</b>", query={"format": "jpg"})
    assert data.startswith(b"\xff\xd8")
    assert json.loads(json.dumps(st.list()))["images"]


def test_google_fonts_resolved_locally_and_missing_ones_named(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    from hcti_build.engine.chromium import missing_google_fonts

    assert missing_google_fonts("Noto Sans|Liberation Serif") == []
    with caplog.at_level("WARNING", logger="hcti_build.engine.browser"):
        store.create({"html": "<p style=\"font-family:'Noto Sans'\">x</p>", "google_fonts": "Noto Sans|Zzz Not A Font"})
    assert "Zzz Not A Font" in caplog.text and "Noto Sans'" not in caplog.text


def test_full_screen_captures_the_whole_page(store: Store) -> None:
    html = "<!DOCTYPE html><html><body style='margin:0'><div style='height:1500px;background:#f00'></div></body></html>"
    im = load(store.get(store.create({"html": html, "full_screen": True, "device_scale": 1})["id"]))
    assert im.size == (1920, 1500)
    assert im.convert("RGB").getpixel((10, 1490)) == (255, 0, 0)


def test_ms_delay_waits_after_load(store: Store) -> None:
    html = (
        "<div id=d style='width:10px;height:10px;background:#fff'></div><script>setTimeout(()=>"
        "document.getElementById('d').style.background='#00f', 200)</script>"
    )
    im = load(store.get(store.create({"html": html, "ms_delay": 600, "device_scale": 1})["id"]))
    assert im.convert("RGB").getpixel((5, 5)) == (0, 0, 255)


def test_media_type_print(store: Store) -> None:
    css = "div{width:10px;height:10px;background:#fff}@media print{div{background:#000}}"
    im = load(store.get(store.create({"html": "<div></div>", "css": css, "media_type": "print"})["id"]))
    assert im.convert("RGB").getpixel((5, 5)) == (0, 0, 0)


def test_pdf_options_set_the_page(store: Store) -> None:
    image_id = store.create({"html": "<p>A4</p>", "pdf_options": {"format": "A4", "printBackground": True}})["id"]
    import re

    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", store.get(image_id, fmt="pdf"))
    assert box is not None
    assert abs(float(box.group(1)) - 595.3) < 2 and abs(float(box.group(2)) - 841.9) < 2  # A4 in points
    with pytest.raises(BadRequestError) as err:  # checked when the image is created, not when its PDF is asked
        store.create({"html": "<p>x</p>", "pdf_options": {"evil": 1}})
    assert err.value.param == "pdf_options.evil"


def test_local_svg_image_is_served_with_its_type(store: Store, tmp_path: Path) -> None:
    """Chromium does not sniff SVG: without image/svg+xml an <img> of a local .svg stays broken."""
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="#00ff00"/></svg>'
    )
    html = '<img src="logo.svg" style="display:block;width:40px;height:40px">'
    png = store.get(store.create({"html": html, "device_scale": 1}, base="art")["id"])
    assert load(png).size == (40, 40) and load(png).convert("RGB").getpixel((20, 20)) == (0, 255, 0)


def test_a_shared_engine_runs_its_pages_in_one_renderer_and_renders_still_share_nothing(tmp_path: Path) -> None:
    """Engine(isolate=False), the MkDocs plugin's: three pages in one renderer process (the session's isolated
    engine has one per page), concurrent renders each get their own colours, and a render still sees nothing
    the one before it stored. The full `chromium` runs renderers of its own besides (a spare one), so the
    pages' renderer is counted as what three pages cost beyond one page."""

    def renderers(engine: Engine, store: Store) -> set[int]:
        before = browser_pids(os.getpid())
        store.create({"html": f"<p>{engine.pool_size}</p><script>1</script>"})
        return {p for p in browser_pids(os.getpid()) - before if "--type=renderer" in cmdline(p)}

    one = Engine(pages=1, isolate=False)
    one_store = Store(tmp_path / "one", root=tmp_path, engine=one)
    try:
        alone = renderers(one, one_store)
    finally:
        one.close()
        one_store.close()
    before = browser_pids(os.getpid())
    engine = Engine(pages=3, isolate=False)
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)
    try:
        colours = {"#ff0000": (255, 0, 0), "#00ff00": (0, 255, 0), "#0000ff": (0, 0, 255), "#ffff00": (255, 255, 0)}

        def box(colour: str) -> tuple[int, ...]:
            html = f"<div style='width:30px;height:30px;background:{colour}'></div><script>document.title='{colour}'</script>"
            data = store.get(store.create({"html": html, "device_scale": 1, "ms_delay": 150})["id"])
            return load(data).convert("RGB").getpixel((15, 15))  # type: ignore[no-any-return]

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            assert list(pool.map(box, list(colours) * 2)) == list(colours.values()) * 2
        shared = {p for p in browser_pids(os.getpid()) - before if "--type=renderer" in cmdline(p)}
        assert len(shared) == len(alone)  # 1 on the headless shell

        store.create({"html": "<script>localStorage.setItem('k', '1'); document.cookie = 'k=1; max-age=99'</script><p>w</p>"})
        reader = "<div id=d style='height:4px;background:#000'></div><script>d.style.width = (10 + "
        reader += "(localStorage.getItem('k') ? 100 : 0) + (document.cookie ? 400 : 0)) + 'px'</script><!--{}-->"
        for i in range(3):  # on each page of the pool
            assert load(store.get(store.create({"html": reader.format(i), "device_scale": 1})["id"])).width == 10
    finally:
        engine.close()
        store.close()


def test_static_documents_replace_each_other_in_place_and_scripts_or_files_force_a_navigation(tmp_path: Path) -> None:
    """Engine(isolate=False) shows a static document in the page of the static one before it (no navigation),
    unless that one loaded a file (a cached copy would go unrecorded) or the window ever ran a script."""
    engine = Engine(pages=1, isolate=False)  # one page: every render follows the one before it
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)

    def colour(image_id: str) -> tuple[int, ...]:
        return load(store.get(image_id)).convert("RGB").getpixel((5, 5))  # type: ignore[no-any-return]

    def box(colour: str, extra: str = "") -> dict[str, object]:
        return {"html": f"<div style='width:20px;height:20px;background:{colour}'></div>{extra}", "device_scale": 1}

    try:
        assert colour(store.create(box("#f00"))["id"]) == (255, 0, 0)  # navigates: a new page
        assert colour(store.create(box("#0f0"))["id"]) == (0, 255, 0)
        assert colour(store.create(box("#00f"))["id"]) == (0, 0, 255)
        assert engine.in_place == 2

        # A script leaves a timer behind in its window: the static document after it gets a fresh one.
        painter = "<script>setInterval(() => document.body.style.background = '#f00', 5)</script>"
        store.create({**box("#fff", painter), "ms_delay": 50})
        assert colour(store.create({**box("#0f0"), "ms_delay": 100})["id"]) == (0, 255, 0)
        assert engine.in_place == 2

        # A document that loads a file: the next one loads it again, so its inputs are recorded and checked.
        Image.new("RGB", (20, 20), "#00f").save(tmp_path / "logo.png")
        first = store.create({"html": "<img src='logo.png' style='display:block'>", "device_scale": 1})
        second = {"html": "<img src='logo.png' style='display:block'><!-- 2 -->", "device_scale": 1}
        before = engine.in_place
        assert colour(store.create(second)["id"]) == (0, 0, 255)
        assert engine.in_place == before  # navigated
        assert store.inputs(CreateOptions.from_mapping(second)) == ["logo.png"]
        Image.new("RGB", (20, 20), "#ff0").save(tmp_path / "logo.png")
        renamed = store.create(second)["id"]
        assert renamed != first["id"] and colour(renamed) == (255, 255, 0)
    finally:
        engine.close()
        store.close()


def test_a_card_rendered_alone_after_concurrent_ones_is_captured(tmp_path: Path) -> None:
    """The last card of a site's build: two pages of one renderer render side by side, then one renders a static
    card in place while the other idles. On the full `chromium` its capture waited for a frame that never came
    (1 build in 4) while a feature switch of ours replaced Playwright's (issue #17); run with --chromium to see."""
    engine = Engine(pages=2, isolate=False)
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)

    def card(i: int, colour: str) -> tuple[int, ...]:
        html = f"<div style='width:40px;height:20px;background:{colour}'>{i}</div>"
        image_id = store.create({"html": html, "device_scale": 1, "max_wait_ms": 3000})["id"]
        return load(store.get(image_id)).convert("RGB").getpixel((35, 15))  # type: ignore[no-any-return]

    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for i in range(0, 24, 3):
                pair = pool.map(card, (i, i + 1), ("#ff0000", "#00ff00"))
                assert list(pair) == [(255, 0, 0), (0, 255, 0)]
                assert card(i + 2, "#0000ff") == (0, 0, 255)  # alone
        assert engine.in_place >= 16
    finally:
        engine.close()
        store.close()


def test_our_chromium_features_are_added_to_playwrights_not_put_in_their_place(tmp_path: Path) -> None:
    """One --enable-features and one --disable-features reach the browser: Playwright's lists with FEATURES added.
    A second switch of ours would replace Playwright's list (Chromium keeps the last), the cause of #17's hang."""
    from hcti_build.engine import chromium as browser

    assert not any(a.startswith(("--enable-features", "--disable-features")) for a in browser.ARGS)
    before = browser_pids(os.getpid())
    engine = Engine(pages=1)
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)
    try:
        store.create({"html": "<p>x</p>"})
        argvs = [cmdline(p).replace("\0", " ").split(" ") for p in browser_pids(os.getpid()) - before]
    finally:
        engine.close()
        store.close()
    (argv,) = [a for a in argvs if "--remote-debugging-pipe" in a and not any(x.startswith("--type=") for x in a)]
    learned = browser.learned_switches()
    assert learned, "Playwright's feature lists were not learned"
    for kind in ("enable", "disable"):
        (given,) = [a.split("=", 1)[1].split(",") for a in argv if a.startswith(f"--{kind}-features=")]
        assert set(learned[kind].split(",")) <= set(given) and set(browser.FEATURES[kind]) <= set(given)


@pytest.mark.parametrize(
    "html",
    [
        "<script>1</script>",
        "<SCRIPT src=a.js></SCRIPT>",
        "<svg><script>1</script></svg>",
        "<img src=x onerror=alert(1)>",
        "<img/onerror=alert(1) src=x>",
        '<img src="x"onerror="alert(1)">',
        "<body onload = 'x()'>",
        "<a href='javascript:void(0)'>a</a>",
        "<iframe srcdoc='<p>x'></iframe>",
        "<object data=a.html></object>",
        "<embed src=a.svg>",
        "<meta http-equiv=refresh content='0;url=/x'>",
        "<div><template shadowrootmode=open><p>x</p></template></div>",
    ],
)
def test_documents_with_scripts_frames_or_handlers_are_not_static(html: str) -> None:
    assert _DYNAMIC.search(html) is not None


@pytest.mark.parametrize(
    "html",
    [
        "<p style='color:red'>Bonjour, Python on the web</p>",
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>body{margin:0}</style></head>'
        '<body><header dir="auto"><img src="data:image/png;base64,iVBOR" alt=""></header><h1>Title</h1></body></html>',
        "<svg width=10 height=10><circle cx=5 cy=5 r=4 fill=red /></svg>",
    ],
)
def test_plain_html_and_css_is_static(html: str) -> None:
    assert _DYNAMIC.search(html) is None


@pytest.mark.parametrize("after", [0.05, 0.3, 0.6, 0.9, 1.2])
def test_a_render_cancelled_while_the_browser_starts_leaves_a_working_engine(tmp_path: Path, after: float) -> None:
    """The first render of an engine starts the browser and fills its pool of pages; a client that goes away at
    any moment of that (``after`` seconds in) must not leave a browser without pages, where the next render waits
    forever (found by `hcti mcp`'s cancellation test)."""
    import threading
    import time

    from hcti_build import CancelToken, HctiError, cancellable

    engine = Engine()
    token = CancelToken()
    outcome: list[str] = []

    def first() -> None:
        try:
            with cancellable(token):
                engine.render(CreateOptions.from_mapping({"html": "<p>slow</p>", "ms_delay": 3000}), tmp_path)
            outcome.append("finished")
        except HctiError as exc:
            outcome.append(exc.message)

    try:
        thread = threading.Thread(target=first)
        thread.start()
        time.sleep(after)
        token.cancel()
        thread.join(30)
        assert outcome == ["The render was cancelled (the client went away)"]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            later = pool.submit(
                engine.render,
                CreateOptions.from_mapping({"html": "<p style='margin:0;width:9px;height:9px'></p>", "device_scale": 1}),
                tmp_path,
            )
            assert later.result(timeout=30).width == 9
    finally:
        engine.close()


def test_a_closed_engine_renders_again(tmp_path: Path) -> None:
    """A long-lived kernel unloads and loads the extension: the engine it closed starts a new loop, browser and pool
    (its pool used to stay bound to the closed loop: the first render after waited on it and failed)."""
    engine = Engine()
    opts = CreateOptions.from_mapping({"html": "<p style='margin:0;width:7px;height:7px'></p>", "device_scale": 1})
    try:
        assert engine.render(opts, tmp_path).width == 7
        engine.close()
        assert engine.render(opts, tmp_path).width == 7 and engine.launches == 2
    finally:
        engine.close()


@pytest.mark.parametrize(("pages", "browsers"), [(100_000, None), (-1, None), (2, 50)])
def test_a_pool_size_beyond_the_machine_is_a_400(pages: int, browsers: int | None) -> None:
    """Found by an independent probe: MkDocs' `concurrency: 100000` started that many pages, and died after 70 s."""
    from hcti_build import BadRequestError

    with pytest.raises(BadRequestError) as err:
        Engine(pages=pages, browsers=browsers)
    assert err.value.param == "pages" and "pages must be between 1 and 16" in err.value.message


@pytest.mark.parametrize(
    ("html", "size"),
    [
        ("<div style='width:300px;height:100px;background:#f00'></div>", (300, 100)),
        ("<div style='width:300px;height:400px;background:#f00'></div>", (300, 400)),
        ("<div style='display:inline-block;width:50px;height:50px;background:#f00'></div>", (50, 50)),
        ("<p style='margin:40px 0 0 30px'>above</p><div style='width:120px;height:60px;background:#f00'></div>", None),
        (
            "<div style='width:200px;height:100px;background:#f00'></div>"
            "<div style='width:200px;height:100px;background:#f00;break-before:page;page-break-before:always'></div>",
            (200, 200),
        ),
    ],
    ids=["short", "tall", "inline-block", "below-text", "page-break"],
)
def test_a_pdf_of_a_snippet_is_one_page_of_its_size(store: Store, html: str, size: tuple[int, int] | None) -> None:
    """Found by a new user: a 300x100 box was two pages, shifted by the body's margin, and a 300x400 one was cut.
    A PDF of a snippet or an element is one page of exactly its box, its corners the box's own. (An independent
    probe: a forced page break inside the box left its lower half white.)"""
    import pypdfium2

    image_id = store.create({"html": html, "device_scale": 1, **({} if size else {"selector": "div"})})["id"]
    info = store.info(image_id)
    doc = pypdfium2.PdfDocument(store.get(image_id, fmt="pdf"))
    try:
        assert len(doc) == 1
        width, height = doc[0].get_size()
        assert (round(width / 0.75), round(height / 0.75)) == (info["width"], info["height"])
        if size:
            assert (info["width"], info["height"]) == size
        page = doc[0].render(scale=2).to_pil().convert("RGB")
        for xy in ((1, 1), (page.width - 2, 1), (1, page.height - 2), (page.width - 2, page.height - 2)):
            assert page.getpixel(xy) == (255, 0, 0), xy
    finally:
        doc.close()
