"""Template helpers of the pages: taxonomy labels in the active language."""

from __future__ import annotations

from django import template

from tracker import selectors, taxonomy

register = template.Library()


@register.filter
def term_labels(slugs) -> str:
    """ "welfare,labor" or ["welfare", "labor"] -> "Welfare, Labour" in the active language."""
    if isinstance(slugs, str):
        slugs = [s for s in slugs.split(",") if s]
    labels = []
    for slug in slugs or ():
        try:
            labels.append(taxonomy.term(slug).label())
        except KeyError:
            labels.append(slug)
    return ", ".join(labels)


@register.filter
def city_label(city) -> str:
    return city.label() if city is not None else ""


@register.inclusion_tag("tracker/_trust.html")
def trust_signal(event) -> dict:
    """For moderators: how far the submitter is trusted, never who they are."""
    return {"accepted": selectors.submitter_accepted_count(event=event)}
