from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("durable", "0003_semantics")]

    operations = [
        migrations.AddField(
            model_name="workflowexecution",
            name="trace_context",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
