"""The "run_sync" permission is declared in SyncRun's Meta.permissions; the "Support" group gets it,
and view access to sync's tables.

stores/migrations/0002_support_group.py creates the group with view access to the stores tables (it
used to add sync's permissions too, from the stores app: databases migrated then already have them,
and adding them again here changes nothing). Django creates model permissions in a post_migrate signal,
i.e. after every migration has run, so this migration creates sync's first.
"""

from django.db import migrations

SUPPORT_GROUP = "Support"
RUN_SYNC = "run_sync"
VIEWABLE = ["orttoaccount", "connection", "syncrun", "syncevent"]


def _ensure_permissions(apps, using):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("sync")
    # Historical app configs have no models module, which makes create_permissions skip them.
    app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
    finally:
        app_config.models_module = None


def support_group_grant(apps, schema_editor):
    using = schema_editor.connection.alias
    _ensure_permissions(apps, using)
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    run_ct = ContentType.objects.db_manager(using).get_by_natural_key("sync", "syncrun")
    wanted = [Permission.objects.using(using).get(content_type=run_ct, codename=RUN_SYNC)]
    for model in VIEWABLE:
        content_type = ContentType.objects.db_manager(using).get_by_natural_key("sync", model)
        wanted.append(Permission.objects.using(using).get(content_type=content_type, codename=f"view_{model}"))
    group, _ = Group.objects.using(using).get_or_create(name=SUPPORT_GROUP)
    group.permissions.add(*wanted)


def support_group_revoke(apps, schema_editor):
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.using(using).filter(name=SUPPORT_GROUP).first()
    if group is not None:
        group.permissions.remove(*Permission.objects.using(using).filter(content_type__app_label="sync"))


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0002_engine_state"),
        ("stores", "0002_support_group"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="syncrun",
            options={"ordering": ["-created_at"], "permissions": [("run_sync", "Can run syncs")]},
        ),
        migrations.RunPython(support_group_grant, support_group_revoke),
    ]
