"""The "Support" group: view-only on the stores and sync tables, plus "Can run syncs".

Django creates model permissions in a post_migrate signal, i.e. after every migration has run, so
this migration creates them itself first (for the historical models) and then builds the group.
The "run_sync" permission lives on SyncRun's content type without a model change (no Meta.permissions).
"""

from django.db import migrations

SUPPORT_GROUP = "Support"
RUN_SYNC = ("sync", "syncrun", "run_sync", "Can run syncs")
VIEWABLE = [
    ("stores", "store"),
    ("stores", "storeuser"),
    ("stores", "webhookevent"),
    ("sync", "orttoaccount"),
    ("sync", "connection"),
    ("sync", "syncrun"),
    ("sync", "syncevent"),
]


def _ensure_permissions(apps, using):
    from django.contrib.auth.management import create_permissions

    for label in ("stores", "sync"):
        app_config = apps.get_app_config(label)
        # Historical app configs have no models module, which makes create_permissions skip them.
        app_config.models_module = True
        try:
            create_permissions(app_config, apps=apps, verbosity=0, using=using)
        finally:
            app_config.models_module = None


def create_support_group(apps, schema_editor):
    using = schema_editor.connection.alias
    _ensure_permissions(apps, using)
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")

    app_label, model, codename, name = RUN_SYNC
    run_ct = ContentType.objects.db_manager(using).get_by_natural_key(app_label, model)
    run_sync, _ = Permission.objects.using(using).get_or_create(
        content_type=run_ct, codename=codename, defaults={"name": name}
    )
    wanted = [run_sync]
    for app_label, model in VIEWABLE:
        content_type = ContentType.objects.db_manager(using).get_by_natural_key(app_label, model)
        wanted.append(Permission.objects.using(using).get(content_type=content_type, codename=f"view_{model}"))
    group, _ = Group.objects.using(using).get_or_create(name=SUPPORT_GROUP)
    group.permissions.add(*wanted)


def remove_support_group(apps, schema_editor):
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Group.objects.using(using).filter(name=SUPPORT_GROUP).delete()
    app_label, model, codename, _ = RUN_SYNC
    Permission.objects.using(using).filter(
        content_type__app_label=app_label, content_type__model=model, codename=codename
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("stores", "0001_initial"),
        ("sync", "0002_engine_state"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_support_group, remove_support_group)]
