"""Who may do what through the API. The roles are Django groups with model permissions
(tracker.roles); these classes only ask for those permissions."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from tracker.models import Event


def can_moderate(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm("tracker.change_event"))


class EventAccess(BasePermission):
    """Anyone reads (the queryset limits what); contributors create; a contributor edits
    only their own submission while it is pending; moderators edit anything."""

    message = "Submitting events needs a contributor account (sign in or send a token)."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if view.action == "create":
            return user.has_perm("tracker.add_event")
        return True

    def has_object_permission(self, request, view, obj: Event) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        if can_moderate(user):
            return True
        self.message = "You can edit only your own submissions, and only while they are pending."
        return (
            obj.submitted_by_id == user.pk
            and obj.status == Event.Status.PENDING
            and user.has_perm("tracker.add_event")
        )


class IsModerator(BasePermission):
    message = "Only moderators may review events."

    def has_permission(self, request, view) -> bool:
        return can_moderate(request.user)


class CanReadHistory(BasePermission):
    message = "Only moderators may read the edit history."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.has_perm("tracker.view_historicalevent")
        )
