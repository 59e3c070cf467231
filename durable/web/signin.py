"""The dashboard's own sign-in page, for operators who are not staff (the admin's login
refuses them). It refuses accounts that may not use the dashboard, saying why."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.core.exceptions import ValidationError
from django.urls import reverse_lazy

from durable.web import access


class OperatorAuthenticationForm(AuthenticationForm):
    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not access.is_operator(user):
            raise ValidationError(
                "This account may not use the workflow dashboard: ask for the "
                "“Can view the workflow dashboard” permission (durable.view_dashboard).",
                code="not_operator",
            )


sign_in = LoginView.as_view(
    template_name="durable/login.html",
    authentication_form=OperatorAuthenticationForm,
    next_page=reverse_lazy("durable:execution-list"),
)
sign_out = LogoutView.as_view(next_page=reverse_lazy("durable:login"))
