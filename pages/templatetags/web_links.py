"""`{{ url|web_url }}`: the URL if a page may link to it (http or https), else ""."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import template

register = template.Library()


@register.filter
def web_url(url) -> str:
    # Stored URLs are checked on every write path, but a row from before that check (or
    # one written by hand in the database) must still never become a javascript: link.
    # urlsplit drops the blanks and control characters that browsers also ignore, so
    # " java\tscript:" is seen as the javascript: it is.
    text = str(url or "")
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return text
