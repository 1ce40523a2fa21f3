from django.db import migrations, models


def removal_times_backfill(apps, schema_editor):
    """Removals recorded before this field compared loads against the callback's arrival time: keep that line."""
    StoreUser = apps.get_model("stores", "StoreUser")
    for user in StoreUser.objects.filter(removed_at__isnull=False, removal_issued_at__isnull=True):
        user.removal_issued_at = int(user.removed_at.timestamp())
        user.save(update_fields=["removal_issued_at"])


class Migration(migrations.Migration):

    dependencies = [
        ("stores", "0004_spent_signed_payload"),
    ]

    operations = [
        migrations.AddField(
            model_name="storeuser",
            name="removal_issued_at",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(removal_times_backfill, migrations.RunPython.noop),
        migrations.AddField(
            model_name="store",
            name="uninstall_check_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="store",
            name="uninstall_checks",
            field=models.PositiveSmallIntegerField(default=0),
        ),
    ]
