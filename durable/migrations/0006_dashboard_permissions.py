"""The dashboard's permissions for operators who are not staff."""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("durable", "0005_fork_and_cron_overlap")]

    operations = [
        migrations.AlterModelOptions(
            name="workflowexecution",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("view_dashboard", "Can view the workflow dashboard"),
                    (
                        "operate",
                        "Can start, cancel, retry and resume workflows and send them events",
                    ),
                    ("view_payloads", "Can view payloads (input, context, results, events)"),
                ],
            },
        ),
    ]
