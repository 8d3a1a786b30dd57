"""Who is recorded as the author of a change in the edit history.

Moderators' and admins' names are kept: they act for the project. A contributor's name is
never written into the history, because the history of their own submission would then say
who reported the event.
"""

from __future__ import annotations


def is_moderator(user) -> bool:
    return bool(
        user
        and user.is_authenticated
        and (user.is_superuser or user.groups.filter(name__in=("Moderator", "Admin")).exists())
    )


def history_user(instance=None, request=None, **kwargs):
    user = getattr(instance, "_history_user", None)
    if user is None and request is not None:
        user = getattr(request, "user", None)
    return user if is_moderator(user) else None


def history_actor(user):
    """What a service sets as `instance._history_user`: the user, or None for contributors."""
    return user if is_moderator(user) else None
