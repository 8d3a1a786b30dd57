"""The API's orjson renderer writes what DRF's own JSONRenderer writes."""

import datetime as dt
import decimal
import json

from django.utils import timezone
from django.utils.translation import gettext_lazy
from rest_framework import renderers

from api.renderers import JSONRenderer


def test_the_same_json_as_drf_for_dates_decimals_lazy_text_and_line_separators():
    data = {
        "period": dt.date(2019, 6, 9),
        "created_at": dt.datetime(2019, 6, 9, 12, 30, 5, 123456, tzinfo=dt.UTC),
        "local": timezone.localtime(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        "share": decimal.Decimal("48.9"),
        "label": gettext_lazy("Events"),
        "text": "Алматы \u2028 line \u2029 break",
        "rows": [{"events": 235, "group": None}, {"events": 0, "group": "welfare"}],
    }
    ours = JSONRenderer().render(data)
    theirs = renderers.JSONRenderer().render(data)
    assert json.loads(ours) == json.loads(theirs)
    assert ours == theirs  # byte for byte: compact, UTF-8, U+2028/2029 escaped
    assert b"\\u2028" in ours and "\u2028".encode() not in ours
    assert JSONRenderer().render(None) == b""
