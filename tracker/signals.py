from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from tracker.cache import events_changed
from tracker.models import Event, Source


@receiver(post_save, sender=Event)
@receiver(post_delete, sender=Event)
@receiver(post_save, sender=Source)
@receiver(post_delete, sender=Source)
@receiver(m2m_changed, sender=Event.organizers.through)
def invalidate_cached_aggregates(**kwargs):
    transaction.on_commit(events_changed)
