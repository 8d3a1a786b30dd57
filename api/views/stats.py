"""/api/v1/stats/trends/: the yearly or monthly counts behind the dashboard."""

from __future__ import annotations

import hashlib
import json

from django.core.cache import cache
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api.filters import EventFilterSet
from api.serializers.stats import TrendsQuerySerializer, TrendsResponseSerializer
from tracker.cache import events_version
from tracker.models import Event
from tracker.selectors import event_trends

TRENDS_CACHE_SECONDS = 24 * 3600


def _cache_key(filterset: EventFilterSet, interval: str, by: str | None) -> str:
    """The normalized query: the parsed filter values (not the raw text), so that
    `grievance=welfare,labor` and `grievance=Welfare, labor` share one entry."""
    values = {
        name: str(value)
        for name, value in sorted(filterset.form.cleaned_data.items())
        if value not in (None, "", [])
    }
    digest = hashlib.sha256(json.dumps([values, interval, by], sort_keys=True).encode()).hexdigest()
    return f"trends:v{events_version()}:{digest}"


@extend_schema(tags=["stats"], parameters=[TrendsQuerySerializer])
class TrendsView(GenericAPIView):
    """Published events per year or month (optionally per grievance, police response,
    city or country), with the event filters of /api/v1/events/.

    Numbers come from one SQL GROUP BY and are cached until any event changes.
    """

    permission_classes = [AllowAny]
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilterSet
    pagination_class = None
    serializer_class = TrendsResponseSerializer

    def get_queryset(self):
        return Event.objects.published()

    def get(self, request, *args, **kwargs):
        query = TrendsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        interval = query.validated_data["interval"]
        by = query.validated_data.get("by")
        # filter_backends describe the parameters in the schema; the filter set is used
        # directly here because the cache key is made of its parsed values.
        filterset = EventFilterSet(
            data=request.query_params, queryset=self.get_queryset(), request=request
        )
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        key = _cache_key(filterset, interval, by)
        results = cache.get(key)
        if results is None:
            results = event_trends(queryset=filterset.qs, interval=interval, by=by)
            cache.set(key, results, TRENDS_CACHE_SECONDS)
        return Response({"interval": interval, "by": by, "results": results})
