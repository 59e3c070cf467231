"""Create the demo's users: admin / admin (a superuser) and operator / operator (not staff:
signs in on the dashboard's own page, may watch, operate and answer inputs)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

# The group setup docs/web.md ("Operators") describes.
OPERATOR_PERMISSIONS = ["view_dashboard", "operate", "respond_pendinginput"]


class Command(BaseCommand):
    help = "Create the demo superuser admin/admin and the operator operator/operator."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("created superuser admin / admin")
        operators, _ = Group.objects.get_or_create(name="Workflow operators")
        operators.permissions.set(
            Permission.objects.filter(
                content_type__app_label="durable", codename__in=OPERATOR_PERMISSIONS
            )
        )
        if not User.objects.filter(username="operator").exists():
            User.objects.create_user("operator", "operator@example.com", "operator")
            self.stdout.write("created operator / operator (not staff: sign in at /durable/)")
        User.objects.get(username="operator").groups.add(operators)
