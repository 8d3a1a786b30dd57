from __future__ import annotations

from rest_framework import serializers

from tracker.selectors import TrendGroup, TrendInterval


class TrendsQuerySerializer(serializers.Serializer):
    interval = serializers.ChoiceField(
        choices=TrendInterval.CHOICES,
        default=TrendInterval.YEAR,
        error_messages={
            "invalid_choice": '"{input}" is not an interval: use '
            + ", ".join(TrendInterval.CHOICES)
            + " (week for a date range of at most a year)."
        },
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
    period = serializers.CharField(
        help_text='"2019" by year, "2019-Q2" by quarter, "2019-06" by month, "2019-W05" by '
        "ISO week."
    )
    group = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Only with by=: a slug, an ISO country code, a region's name or a city's "
        "English name (null: events without a city or region).",
    )
    events = serializers.IntegerField()
    arrests = serializers.IntegerField(help_text="Sum of reported arrests.")
    events_with_arrests = serializers.IntegerField()
    events_with_force = serializers.IntegerField(help_text="Police used force or lethal force.")
    injuries = serializers.IntegerField(help_text="Sum of reported injuries.")
    deaths = serializers.IntegerField(help_text="Sum of reported deaths.")
    participants_low = serializers.IntegerField(help_text="Sum of the low crowd estimates.")
    participants_high = serializers.IntegerField(help_text="Sum of the high crowd estimates.")
    events_with_participants = serializers.IntegerField(
        help_text="Events with a crowd estimate (the sums are over these)."
    )


class TrendsResponseSerializer(serializers.Serializer):
    interval = serializers.CharField()
    by = serializers.CharField(allow_null=True)
    results = TrendRowSerializer(many=True)
