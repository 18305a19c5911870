from __future__ import annotations

import pytest

from hcti_build import BadRequestError, CreateOptions, ImageQuery


def test_html_required_is_the_apis_message() -> None:
    with pytest.raises(BadRequestError) as err:
        CreateOptions.from_mapping({"css": "p{}"})
    assert err.value.to_json() == {
        "error": "Bad Request",
        "statusCode": 400,
        "message": "HTML is Required",
        "validation_errors": [{"field": "html", "message": "HTML is Required"}],
    }


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"device_scale": "4"}, "device_scale"),
        ({"device_scale": "nan"}, "device_scale"),
        ({"ms_delay": "-1"}, "ms_delay"),
        ({"ms_delay": "20001"}, "ms_delay"),
        ({"viewport_width": "800"}, "viewport_width"),
        ({"color_scheme": "blue"}, "color_scheme"),
        ({"media_type": "tv"}, "media_type"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"full_screen": "maybe"}, "full_screen"),
        ({"bogus": "1"}, "bogus"),
        ({"html": "a\x00b"}, "html"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, str], param: str) -> None:
    with pytest.raises(BadRequestError) as err:
        CreateOptions.from_mapping({"html": "<p>x</p>", **params})
    assert err.value.param == param
    assert param in err.value.message or "HTML" in err.value.message


def test_defaults_and_canonical_form() -> None:
    a = CreateOptions.from_mapping({"html": "<p>x</p>", "device_scale": "2", "ms_delay": 0})
    b = CreateOptions.from_mapping({"ms_delay": "0", "html": "<p>x</p>", "device_scale": 2})
    assert a.canonical_json() == b.canonical_json()
    assert a.scale == 2.0
    u = CreateOptions.from_mapping({"url": "https://example.org", "html": "<p>ignored</p>"})
    assert u.scale == 1.0 and u.html is None  # url wins, as in the API


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(BadRequestError) as err:
        CreateOptions.from_mapping({"html": "<p>x</p>", "device_scale": "9", "ms_delay": -1, "colour": "red"})
    fields = [e["field"] for e in err.value.to_json()["validation_errors"]]
    assert fields == ["colour", "ms_delay", "device_scale"]
    assert "device_scale must be a number between 0.1 and 3" in err.value.message
    with pytest.raises(BadRequestError) as err:
        ImageQuery.from_mapping({"width": "0", "dpi": "9000", "x_2": "10"})
    assert [e["field"] for e in err.value.to_json()["validation_errors"]] == ["width", "dpi", "x_2"]


def test_hosted_api_only_parameters_are_accepted_and_change_nothing() -> None:
    plain = CreateOptions.from_mapping({"html": "<p>x</p>"})
    compat = CreateOptions.from_mapping({"html": "<p>x</p>", "block_consent_banners": "true", "disable_twemoji": False})
    assert compat == plain and compat.canonical_json() == plain.canonical_json()
    with pytest.raises(BadRequestError) as err:
        CreateOptions.from_mapping({"html": "<p>x</p>", "disable_twemoji": "maybe"})
    assert err.value.param == "disable_twemoji"


def test_json_schema_comes_from_the_declarations() -> None:
    from hcti_build.options import PARAM_HELP, json_schema

    create, query = json_schema(CreateOptions)["properties"], json_schema(ImageQuery)["properties"]
    assert create["ms_delay"] == {"type": "integer", "minimum": 0, "maximum": 20000, "description": PARAM_HELP["ms_delay"]}
    assert create["color_scheme"]["enum"] == ["light", "dark"] and create["full_screen"]["type"] == "boolean"
    assert query["format"]["enum"] == ["jpeg", "jpg", "pdf", "png", "webp"] and query["dpi"]["maximum"] == 600
    assert set(create) == set(CreateOptions.__dataclass_fields__) and set(query) == set(ImageQuery.__dataclass_fields__)


def test_an_error_said_about_a_card_keeps_its_status() -> None:
    """The MkDocs plugin names the card an error is about; it made a bare HctiError of a 400, answered
    "Internal Server Error". The class, status, parameter and field list are kept, with the new message."""
    with pytest.raises(BadRequestError) as caught:
        CreateOptions.from_mapping({"html": "<p>x</p>", "device_scale": "9"})
    said = caught.value.about("card for index.md")
    assert type(said) is BadRequestError and said.status_code == 400 and said.param == "device_scale"
    body = said.to_json()
    assert body["error"] == "Bad Request" and body["message"].startswith("card for index.md: device_scale")
    assert body["validation_errors"][0]["field"] == "device_scale"  # each field's own message, unprefixed
    assert str(said) == body["message"] and caught.value.message.startswith("device_scale")  # the original kept
