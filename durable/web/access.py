"""Who may see and do what in the dashboard. Every view and consumer goes through here.

Operators are staff, or any active user with `durable.view_dashboard` (they sign in on
the dashboard's own page; the admin's refuses users who are not staff). An action needs
its model permission, or `durable.operate`, which grants every action but answering
inputs; answering needs `durable.respond_pendinginput`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from durable import codecs

VIEW_PERMISSION = "durable.view_dashboard"
OPERATE_PERMISSION = "durable.operate"

# Beyond being staff, an action needs the model permission behind it.
CANCEL_PERMISSION = "durable.change_workflowexecution"
SEND_EVENT_PERMISSION = "durable.change_workflowexecution"
START_PERMISSION = "durable.add_workflowexecution"
RESPOND_PERMISSION = "durable.respond_pendinginput"
# With a payload codec (DURABLE["CODEC"]), payloads are shown decoded only with this.
VIEW_PAYLOADS_PERMISSION = "durable.view_payloads"

# What `durable.operate` stands for: starting, cancelling, retrying, resuming, events.
OPERATE_GRANTS = frozenset({CANCEL_PERMISSION, SEND_EVENT_PERMISSION, START_PERMISSION})

View = TypeVar("View", bound=Callable[..., HttpResponse])


def sees_payloads(user: Any) -> bool:
    """Whether `user` is shown payloads (input, context, results, responses) decoded:
    always without a codec; with one, only with the durable.view_payloads permission."""
    if codecs.active() is None:
        return True
    return bool(user is not None and user.has_perm(VIEW_PAYLOADS_PERMISSION))


def is_staff(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def is_operator(user: Any) -> bool:
    """May see the dashboard: an active user who is staff or has `durable.view_dashboard`."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or user.has_perm(VIEW_PERMISSION))


def allowed(user: Any, permission: str) -> bool:
    """`user` holds `permission`, or `durable.operate` when that grants it."""
    if user.has_perm(permission):
        return True
    return permission in OPERATE_GRANTS and bool(user.has_perm(OPERATE_PERMISSION))


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    """A 403 page of the dashboard's own, saying what is missing."""
    return render(request, "durable/forbidden.html", {"reason": reason}, status=403)


def operator_required(permission: str | None = None) -> Callable[[View], View]:
    """Anonymous users go to the dashboard's sign-in page; signed-in users who are not
    operators (or lack `permission`) get a 403 page that says why."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(
                    request.get_full_path(), login_url=reverse("durable:login")
                )
            if not is_operator(request.user):
                return forbidden(
                    request,
                    "This account may not use the dashboard: it needs staff status or the "
                    f"{VIEW_PERMISSION} permission.",
                )
            if permission is not None and not allowed(request.user, permission):
                also = f" (or {OPERATE_PERMISSION})" if permission in OPERATE_GRANTS else ""
                return forbidden(request, f"This needs the {permission} permission{also}.")
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# The name the views use (from when only staff could use the dashboard): operators now.
staff_required = operator_required
