"""The three roles, as Django groups, and what each may do. Applied by a migration and by
`manage.py setup_roles` (for when permissions of a new model appear)."""

from __future__ import annotations

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "Contributor": [
        "tracker.add_event",
        "tracker.view_event",
        "tracker.add_source",
        "tracker.view_city",
        "tracker.view_organization",
    ],
    "Moderator": [
        "tracker.add_event",
        "tracker.change_event",
        "tracker.view_event",
        "tracker.delete_event",
        "tracker.add_source",
        "tracker.change_source",
        "tracker.delete_source",
        "tracker.view_source",
        "tracker.add_externalid",
        "tracker.change_externalid",
        "tracker.delete_externalid",
        "tracker.view_externalid",
        "tracker.add_organization",
        "tracker.change_organization",
        "tracker.view_organization",
        "tracker.view_city",
        "tracker.view_cityname",
        "tracker.view_historicalevent",
        "tracker.view_importjob",
        "tracker.view_exportjob",
    ],
    "Admin": ["tracker.*", "auth.view_user", "auth.change_user", "auth.add_user"],
}


def apply_roles(apps=None) -> None:
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    apps = apps or global_apps
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, apps=apps)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            query = Permission.objects.filter(content_type__app_label=app_label)
            if codename != "*":
                query = query.filter(codename=codename)
            permissions += list(query)
        group.permissions.set(permissions)
