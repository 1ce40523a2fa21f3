"""Support staff may view the organizations ledger, like every other sync table (stores 0002)."""

from django.db import migrations


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
    content_type = ContentType.objects.db_manager(using).get_by_natural_key("sync", "organizationledger")
    view = Permission.objects.using(using).get(content_type=content_type, codename="view_organizationledger")
    group, _ = Group.objects.using(using).get_or_create(name="Support")
    group.permissions.add(view)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0005_organization_ledger"),
        ("stores", "0002_support_group"),
    ]

    operations = [migrations.RunPython(_grant, migrations.RunPython.noop)]
