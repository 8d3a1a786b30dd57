"""The API's side of the one query layer (tracker.query): the filter backend that tells the
filter set which parameters the view itself reads, the 400 answer for invalid filters, and
the OpenAPI types of the custom filters."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from tracker import query

for _filter, _type in (
    (query.MomentFilter, OpenApiTypes.DATETIME),
    (query.IntegerFilter, OpenApiTypes.INT),
    (query.SlugListFilter, OpenApiTypes.STR),
    (query.CountryListFilter, OpenApiTypes.STR),
    (query.CityFilter, OpenApiTypes.STR),
    (query.Admin1ListFilter, OpenApiTypes.STR),
    (query.OrganizerListFilter, OpenApiTypes.STR),
    (query.BBoxFilter, OpenApiTypes.STR),
    (query.LonLatFilter, OpenApiTypes.STR),
):
    extend_schema_field(_type)(_filter)


def filter_validation_error(filterset: query.EventFilterSet) -> ValidationError:
    """The 400 of invalid filters, in the API's error body (the request-wide messages, such
    as an unknown parameter, under non_field_errors)."""
    errors = {
        ("non_field_errors" if name == "__all__" else name): [str(m) for m in messages]
        for name, messages in filterset.errors.items()
    }
    return ValidationError(errors)


def valid_filterset(request, *, queryset, extra_params=()) -> query.EventFilterSet:
    """The filter set of `request` over `queryset`, or the 400 answer."""
    filterset = query.EventFilterSet(
        data=request.query_params, queryset=queryset, request=request, extra_params=extra_params
    )
    if not filterset.is_valid():
        raise filter_validation_error(filterset)
    return filterset


class EventFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend for tracker.query.EventFilterSet: the view names the parameters it
    reads itself in `query_params_of_view` (paging, ordering, format)."""

    def get_filterset_kwargs(self, request, queryset, view):
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        kwargs["extra_params"] = getattr(view, "query_params_of_view", ())
        return kwargs

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise filter_validation_error(filterset)
        return filterset.qs
