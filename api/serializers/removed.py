"""The rows of /api/v1/events/removed/: an event id, how and when it left the public record."""

from __future__ import annotations

from rest_framework import serializers

from tracker.models import EventRemoval, RemovalKind


class EventRemovalSerializer(serializers.ModelSerializer):
    """One departure of an event from the public record. Nothing about who removed it."""

    id = serializers.IntegerField(
        source="event_id", help_text="The event's id, as in /api/v1/events/."
    )
    kind = serializers.ChoiceField(
        choices=RemovalKind.choices,
        help_text="withdrawn (back to pending or draft), rejected, archived, deleted; merged "
        "is reserved for merging, which does not exist yet.",
    )
    removed_at = serializers.DateTimeField(
        help_text="When the removing transaction started (the time zone and format of "
        "updated_at in /api/v1/events/)."
    )
    merged_into = serializers.IntegerField(
        allow_null=True,
        help_text="For kind merged: the event it was merged into. Always null for now.",
    )

    class Meta:
        model = EventRemoval
        fields = ["id", "kind", "removed_at", "merged_into"]
        read_only_fields = fields
