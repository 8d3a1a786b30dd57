"""/api/v1/stats/trends/: the counts per period behind the dashboard."""

from __future__ import annotations

from functools import partial

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

# Registers the schema's extensions before drf-spectacular creates the views it describes
# (a view extension must exist by then; api.schema is otherwise first read while parsing).
import api.schema  # noqa: F401
from api.filtering import EventFilterBackend, valid_filterset
from api.serializers.stats import TrendsQuerySerializer, TrendsResponseSerializer
from tracker.models import Event
from tracker.query import EventFilterSet
from tracker.selectors import (
    COUNT_METRICS,
    IntervalTooLong,
    axis_periods,
    check_interval,
    event_count_rows,
    period_label,
)


@extend_schema(tags=["stats"], parameters=[TrendsQuerySerializer])
class TrendsView(GenericAPIView):
    """Published events per year, quarter, month or week (optionally per grievance, police
    response, city, region or country), with every event filter of /api/v1/events/.

    Without by=, every period of the filter's date range within the data is listed, those
    without events as zeros. With by=grievance or by=police_response an event counts once
    in each of its categories. Numbers equal a plain SQL GROUP BY over the same filter,
    always current: they come from rollup tables kept in step with the events in the same
    transaction, or from the events themselves.
    """

    permission_classes = [AllowAny]
    filter_backends = [EventFilterBackend]  # describes the filters in the schema
    filterset_class = EventFilterSet
    query_params_of_view = ("interval", "by", "format")
    pagination_class = None
    serializer_class = TrendsResponseSerializer

    def get_queryset(self):
        return Event.objects.published()

    def get(self, request, *args, **kwargs):
        query = TrendsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        interval = query.validated_data["interval"]
        by = query.validated_data.get("by")
        filterset = valid_filterset(
            request, queryset=self.get_queryset(), extra_params=self.query_params_of_view
        )
        filters = filterset.form.cleaned_data
        try:
            check_interval(filters=filters, interval=interval)
        except IntervalTooLong as exc:
            raise ValidationError({"interval": [str(exc)]}) from None
        if by is None:
            rows = event_count_rows(filterset=filterset, interval=interval)
            found = {row[0]: row for row in rows}
            zero = (0,) * len(COUNT_METRICS)
            periods = sorted(set(axis_periods(filters=filters, interval=interval)) | set(found))
            labels = {period: period_label(period, interval) for period in periods}
            rows = [found.get(period, (period, *zero)) for period in periods]
            # A row per period: a few hundred at most.
            results = [
                {"period": labels[row[0]], **dict(zip(COUNT_METRICS, row[1:], strict=True))}
                for row in rows
            ]
            return Response({"interval": interval, "by": by, "results": results})
        # A by=city answer has thousands of rows: they come in the answer's order, cities
        # named, and their dicts are built while they arrive.
        results = event_count_rows(
            filterset=filterset,
            interval=interval,
            by=by,
            build=partial(_grouped_results, _PeriodLabels(interval)),
            named=True,
        )
        return Response({"interval": interval, "by": by, "results": results})


class _PeriodLabels(dict):
    """period start -> its label in the answer ("2019-06"), each computed once."""

    def __init__(self, interval: str):
        super().__init__()
        self.interval = interval

    def __missing__(self, period):
        label = self[period] = period_label(period, self.interval)
        return label


def _grouped_results(labels: _PeriodLabels, rows: list[tuple]) -> list[dict]:
    """The answer's dicts of grouped rows (period, group, *COUNT_METRICS): one dict display
    per row (a call or dict(zip()) per row costs more than the SQL)."""
    return [
        {
            "period": labels[period],
            "group": group,
            "events": events,
            "arrests": arrests,
            "events_with_arrests": with_arrests,
            "events_with_force": with_force,
            "injuries": injuries,
            "deaths": deaths,
            "participants_low": low,
            "participants_high": high,
            "events_with_participants": with_crowd,
        }
        for (
            period, group, events, arrests, with_arrests, with_force, injuries, deaths, low,
            high, with_crowd,
        ) in rows
    ]  # fmt: skip


# The rows' counts, in the order _grouped_results unpacks them.
assert COUNT_METRICS == (
    "events", "arrests", "events_with_arrests", "events_with_force", "injuries", "deaths",
    "participants_low", "participants_high", "events_with_participants",
)  # fmt: skip
