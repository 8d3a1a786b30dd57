"""/api/v1/stats/trends/: the counts per period behind the dashboard."""

from __future__ import annotations

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
    TrendGroup,
    axis_periods,
    check_interval,
    city_names_by_id,
    event_counts,
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
        rows = event_counts(filterset=filterset, interval=interval, by=by)
        if by is None:
            found = {row["period"]: row for row in rows}
            zero = dict.fromkeys(COUNT_METRICS, 0)
            periods = sorted(set(axis_periods(filters=filters, interval=interval)) | set(found))
            rows = [found.get(period, {"period": period, **zero}) for period in periods]
        names = city_names_by_id(row["group"] for row in rows) if by == TrendGroup.CITY else {}
        labels = {period: period_label(period, interval) for period in {r["period"] for r in rows}}
        # Each row as it came (period, [group,] COUNT_METRICS) with the period's label and a
        # city's name, changed in place (fresh dicts): a by=city answer has thousands.
        results = rows
        for item in results:
            item["period"] = labels[item["period"]]
        if by == TrendGroup.CITY:
            for item in results:
                if item["group"] is not None:
                    item["group"] = names[item["group"]]
        if by is not None:
            results.sort(key=lambda r: (r["period"], r["group"] is None, str(r["group"])))
        return Response({"interval": interval, "by": by, "results": results})
