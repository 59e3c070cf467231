"""Who may see and do what in the dashboard. Every view and consumer goes through here."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from durable import codecs

# Beyond being staff, an action needs the model permission behind it.
CANCEL_PERMISSION = "durable.change_workflowexecution"
SEND_EVENT_PERMISSION = "durable.change_workflowexecution"
START_PERMISSION = "durable.add_workflowexecution"
RESPOND_PERMISSION = "durable.respond_pendinginput"
# With a payload codec (DURABLE["CODEC"]), payloads are shown decoded only with this.
VIEW_PAYLOADS_PERMISSION = "durable.view_payloads"

View = TypeVar("View", bound=Callable[..., HttpResponse])


def sees_payloads(user: Any) -> bool:
    """Whether `user` is shown payloads (input, context, results, responses) decoded:
    always without a codec; with one, only with the durable.view_payloads permission."""
    if codecs.active() is None:
        return True
    return bool(user is not None and user.has_perm(VIEW_PAYLOADS_PERMISSION))


def is_staff(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def staff_required(permission: str | None = None) -> Callable[[View], View]:
    """Anonymous users go to the login page; logged-in users who are not staff (or lack
    `permission`) get 403."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not is_staff(request.user):
                raise PermissionDenied("the dashboard is for staff")
            if permission is not None and not request.user.has_perm(permission):
                raise PermissionDenied(f"you need the {permission} permission")
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
