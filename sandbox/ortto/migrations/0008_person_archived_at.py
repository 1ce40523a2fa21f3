from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sandbox_ortto', '0007_request_in_flight'),
    ]

    operations = [
        migrations.AddField(
            model_name='person',
            name='archived_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
