"""The "Support" group: view-only on the stores tables.

Django creates model permissions in a post_migrate signal, i.e. after every migration has run, so
this migration creates them itself first (for the historical models) and then builds the group.
sync/migrations/0003_run_sync_permission.py adds sync's tables and "Can run syncs" to the group.
"""

from django.db import migrations

SUPPORT_GROUP = "Support"
VIEWABLE = ["store", "storeuser", "webhookevent"]


def _ensure_permissions(apps, using):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("stores")
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
    wanted = []
    for model in VIEWABLE:
        content_type = ContentType.objects.db_manager(using).get_by_natural_key("stores", model)
        wanted.append(Permission.objects.using(using).get(content_type=content_type, codename=f"view_{model}"))
    group, _ = Group.objects.using(using).get_or_create(name=SUPPORT_GROUP)
    group.permissions.add(*wanted)


def remove_support_group(apps, schema_editor):
    using = schema_editor.connection.alias
    Group = apps.get_model("auth", "Group")
    Group.objects.using(using).filter(name=SUPPORT_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("stores", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_support_group, remove_support_group)]
