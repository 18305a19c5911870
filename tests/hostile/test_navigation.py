"""Pages that navigate themselves while they render: HTML is captured as the document it was given, or refused
with the API's 400 when it leaves it; a url render follows its page to where it settles. Never Playwright's
"Execution context was destroyed" as a 500."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from canary import Canary
from conftest import Served, load

from hcti_build import BadRequestError, RenderTimeoutError, Store


@pytest.mark.parametrize(
    ("html", "where"),
    [
        ("<meta http-equiv='refresh' content='0;url=/x'><p>x</p>", "https://hcti.invalid/x"),
        ("<p>x</p><script>location.href = '/elsewhere.html'</script>", "https://hcti.invalid/elsewhere.html"),
        ("<p>x</p><script>setTimeout(() => location.assign('https://example.org/'), 50)</script>", "https://example.org/"),
    ],
    ids=["meta-refresh", "location", "another-site-later"],
)
def test_html_that_navigates_away_is_a_400_naming_where_it_went(store: Store, html: str, where: str) -> None:
    with pytest.raises(BadRequestError) as err:
        store.create({"html": html, "ms_delay": 300})
    assert err.value.param == "html" and err.value.status_code == 400
    assert err.value.message.startswith(f"html navigated away from its document, to {where} (a meta refresh or a script")
    assert store.list()["images"] == []


def test_html_that_reloads_itself_forever_is_cut_off_at_max_wait_ms(store: Store) -> None:
    with pytest.raises(RenderTimeoutError) as err:
        store.create({"html": "<p>x</p><script>location.reload()</script>", "max_wait_ms": 1500})
    assert err.value.status_code == 408 and "kept navigating" in err.value.message
    assert store.create({"html": "<p style='margin:0'>fine</p>"})["id"]  # the page was replaced, the pool is fine


def test_a_hash_change_is_no_navigation(store: Store) -> None:
    image = store.create({"html": "<p>x</p><script>location.hash = 'part'</script>", "ms_delay": 100})
    assert image["id"]


def test_a_url_render_follows_its_page_to_where_it_settles(store: Store, allowed_site: tuple[Canary, Canary]) -> None:
    site, _ = allowed_site
    image = store.create({"url": f"{site.origin}/jsredirect?to=/final", "viewport_width": 64, "viewport_height": 64})
    assert site.hits == ["/jsredirect?to=/final", "/final"]
    assert load(store.get(image["id"])).convert("RGB").getpixel((10, 10)) == (0, 255, 0)  # the page it landed on


def test_the_server_answers_a_navigating_page_in_the_apis_words(serve: Callable[..., Served]) -> None:
    served = serve()
    r = served.client.post("/v1/image", json={"html": "<meta http-equiv='refresh' content='0;url=/x'><p>x</p>"})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "Bad Request" and body["message"].startswith("html navigated away from its document")
    assert "Execution context" not in r.text


def test_history_push_state_is_not_a_navigation(store: Store) -> None:
    """Found by an independent probe: a document that changes its address (pushState) was refused as one that
    navigated away; it is still the document it was given."""
    image = store.create({"html": "<p style='margin:0;width:9px;height:9px'>x</p><script>history.pushState({}, '', '/moved')</script>",
                          "device_scale": 1})  # fmt: skip
    assert load(store.get(image["id"])).size == (9, 9)


def test_a_step_whose_document_went_away_before_we_heard_of_the_navigation_runs_again() -> None:
    """CI, full chromium under load: "another-site-later" was a 500. Playwright answered the measuring step with
    "Execution context was destroyed" before the navigation's request and commit events reached the sandbox's
    counters, so the step's failure looked like its own. Its words for a gone document count as a navigation."""
    import asyncio
    from types import SimpleNamespace

    from playwright.async_api import Error as PlaywrightError

    from hcti_build.engine.rendering import on_final_document

    waited: list[str] = []

    async def wait_for_load_state(state: str, timeout: float) -> None:
        waited.append(state)

    slot = SimpleNamespace(
        visit=SimpleNamespace(navigations=1, commits=1), page=SimpleNamespace(wait_for_load_state=wait_for_load_state)
    )
    attempts: list[int] = []

    async def step() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise PlaywrightError("Page.evaluate: Execution context was destroyed, most likely because of a navigation")
        return "measured on the document it landed on"

    async def run() -> str:
        return await on_final_document(slot, step, asyncio.get_running_loop().time() + 5)  # type: ignore[arg-type]

    assert asyncio.run(run()) == "measured on the document it landed on" and waited == ["load"]

    async def broken() -> str:
        raise PlaywrightError("Page.evaluate: SyntaxError: Unexpected token")  # the step's own failure: no retry

    with pytest.raises(PlaywrightError, match="SyntaxError"):
        asyncio.run(on_final_document(slot, broken, 1e12))  # type: ignore[arg-type]
