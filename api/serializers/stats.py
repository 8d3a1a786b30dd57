from __future__ import annotations

from rest_framework import serializers

from tracker.selectors import TrendGroup, TrendInterval


class TrendsQuerySerializer(serializers.Serializer):
    interval = serializers.ChoiceField(
        choices=TrendInterval.CHOICES,
        default=TrendInterval.YEAR,
        error_messages={"invalid_choice": '"{input}" is not an interval: use year or month.'},
    )
    by = serializers.ChoiceField(
        choices=TrendGroup.CHOICES,
        required=False,
        error_messages={
            "invalid_choice": '"{input}" cannot group trends: use '
            + ", ".join(TrendGroup.CHOICES)
            + "."
        },
    )


class TrendRowSerializer(serializers.Serializer):
    period = serializers.CharField(help_text='"2019" by year, "2019-06" by month.')
    group = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Only with by=: a slug, an ISO country code or a city's English name "
        "(null: events without a city).",
    )
    events = serializers.IntegerField()
    arrests = serializers.IntegerField(help_text="Sum of reported arrests.")
    events_with_arrests = serializers.IntegerField()
    events_with_force = serializers.IntegerField(help_text="Police used force or lethal force.")


class TrendsResponseSerializer(serializers.Serializer):
    interval = serializers.CharField()
    by = serializers.CharField(allow_null=True)
    results = TrendRowSerializer(many=True)
