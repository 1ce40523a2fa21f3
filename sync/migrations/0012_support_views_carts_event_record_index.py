"""Support staff may view the abandoned carts' ledger, like every other sync table (0006); the failed
records list finds a record's later events by its BigCommerce id (sync/admin/site.py, events_latest_per_record)."""

from django.db import migrations, models


def _grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    using = schema_editor.connection.alias
    app_config = apps.get_app_config("sync")
    # Django creates permissions after all migrations; create this one now (see stores 0002).
    app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
    finally:
        app_config.models_module = None
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type = ContentType.objects.db_manager(using).get_by_natural_key("sync", "cartledger")
    view = Permission.objects.using(using).get(content_type=content_type, codename="view_cartledger")
    group, _ = Group.objects.using(using).get_or_create(name="Support")
    group.permissions.add(view)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0011_connection_managers_and_changes"),
        ("stores", "0002_support_group"),
    ]

    operations = [
        migrations.AlterModelOptions(name="cartledger", options={"verbose_name": "abandoned cart"}),
        migrations.AddIndex(
            model_name="syncevent",
            index=models.Index(fields=["bc_id", "resource"], name="syncevent_record_idx"),
        ),
        migrations.RunPython(_grant, migrations.RunPython.noop),
    ]
