"""The payload codec: a FernetCodec run leaves no plaintext in any table, keys rotate,
and the dashboard and admin show payloads only to users allowed to see them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings
from django.urls import reverse

import durable
from durable import codecs
from durable.codecs import CodecError, FernetCodec
from durable.conf import durable_settings
from durable.models import PendingInput, WorkflowExecution
from durable.testing import assert_workflow_completed, run_until_idle
from tests.semantics.secret import Secretive
from tests.support.workers import WorkerPool, wait_until
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db

SECRET = "SSN-078-05-1120"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def fernet(*keys: str) -> Any:
    return override_settings(
        DURABLE={"CODEC": "durable.codecs.FernetCodec", "CODEC_OPTIONS": {"keys": list(keys)}}
    )


def run_secretive() -> str:
    wid = durable.start(Secretive, {"ssn": SECRET})
    run_until_idle()
    durable.send_event(wid, "card", {"number": f"4111 {SECRET}"})
    run_until_idle()
    durable.provide_input(wid, "approval", f"approved for {SECRET}")
    run_until_idle()
    return wid


def raw_rows() -> dict[str, list[str]]:
    """Every row of every table of the durable app, as the database stores it (text)."""
    tables = [t for t in connection.introspection.table_names() if t.startswith("durable_")]
    rows: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for table in tables:
            if connection.vendor == "postgresql":
                cursor.execute(f'SELECT t::text FROM "{table}" AS t')
                rows[table] = [row[0] for row in cursor.fetchall()]
            else:
                cursor.execute(f'SELECT * FROM "{table}"')
                rows[table] = [repr(row) for row in cursor.fetchall()]
    return rows


def test_a_fernet_run_stores_no_plaintext_payload_in_any_table() -> None:
    with fernet(KEY_A):
        wid = run_secretive()
        execution = WorkflowExecution.objects.get(workflow_id=wid)

        assert execution.status == "completed", execution.error
        assert execution.input == {"ssn": SECRET}
        assert execution.context["items"] == [f"{SECRET}-{n}" for n in range(3)]
        assert execution.result["card"] == {"number": f"4111 {SECRET}"}
        assert execution.result["answer"] == f"approved for {SECRET}"
        rows = raw_rows()

    leaks = {table: [r for r in found if SECRET in r] for table, found in rows.items()}
    assert not any(leaks.values()), leaks
    stored = "".join(rows["durable_workflowexecution"])
    assert codecs.MARKER in stored
    assert rows["durable_workflowevent"]
    assert rows["durable_pendinginput"]


@pytest.mark.e2e
def test_a_fernet_run_on_a_real_worker_stores_no_plaintext(workers: WorkerPool) -> None:
    workers.start(
        1,
        workflow_modules="tests.semantics.secret",
        env={
            "DURABLE_CODEC": "durable.codecs.FernetCodec",
            "DURABLE_CODEC_OPTIONS": json.dumps({"keys": [KEY_A]}),
        },
    )
    with fernet(KEY_A):
        wid = durable.start(Secretive, {"ssn": SECRET})
        wait_until(
            lambda: WorkflowExecution.objects.get(workflow_id=wid).status == "waiting",
            timeout=60,
            message=lambda: f"the run never waited\n{workers.logs()}",
        )
        durable.send_event(wid, "card", {"number": f"4111 {SECRET}"})
        wait_until(
            lambda: PendingInput.objects.filter(execution__workflow_id=wid).exists(),
            timeout=60,
            message=lambda: f"the run never asked for approval\n{workers.logs()}",
        )
        durable.provide_input(wid, "approval", f"approved for {SECRET}")
        execution = assert_workflow_completed(wid, timeout=60)
        assert execution.result["answer"] == f"approved for {SECRET}"
        rows = raw_rows()

    leaks = {table: [r for r in found if SECRET in r] for table, found in rows.items()}
    assert not any(leaks.values()), leaks
    assert SECRET not in workers.logs()


def test_without_a_codec_the_same_run_is_stored_in_plain_json() -> None:
    wid = run_secretive()

    assert WorkflowExecution.objects.get(workflow_id=wid).status == "completed"
    assert any(SECRET in row for row in raw_rows()["durable_workflowexecution"])


def test_keys_rotate_newest_first_and_a_dropped_key_fails_clearly() -> None:
    with fernet(KEY_A):
        old = durable.start(Secretive, {"ssn": SECRET})
    with fernet(KEY_B, KEY_A):
        assert durable.get_execution(old).input == {"ssn": SECRET}
        new = durable.start(Secretive, {"ssn": SECRET})
        assert durable.get_execution(new).input == {"ssn": SECRET}
    with fernet(KEY_B):
        assert durable.get_execution(new).input == {"ssn": SECRET}
        with pytest.raises(CodecError, match="could not be decrypted with any key"):
            durable.get_execution(old)
    # Written with the newest key: the old key alone cannot read it.
    token = raw_input(new).encode()
    assert json.loads(Fernet(KEY_B.encode()).decrypt(token)) == {"ssn": SECRET}
    with pytest.raises(InvalidToken):
        Fernet(KEY_A.encode()).decrypt(token)


def raw_input(wid: str) -> str:
    """The encrypted token of an execution's input, as stored."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT input FROM durable_workflowexecution WHERE workflow_id = %s", [wid])
        (text,) = cursor.fetchone()
    value = json.loads(text) if isinstance(text, str) else text
    return str(value["data"])


def test_an_encoded_payload_without_a_codec_is_an_error_naming_the_setting() -> None:
    with fernet(KEY_A):
        wid = durable.start(Secretive, {"ssn": SECRET})

    with pytest.raises(CodecError, match=r"DURABLE\['CODEC'\] is not set"):
        durable.get_execution(wid)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs DURABLE\\['CODEC_OPTIONS'\\]\\['keys'\\]"),
        ({"keys": ["not-a-key"]}, "\\['keys'\\]\\[0\\] is not a Fernet key"),
    ],
)
def test_fernet_codec_refuses_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FernetCodec(options)


def test_a_codec_that_cannot_be_made_is_a_system_check_error() -> None:
    with (
        override_settings(DURABLE={"CODEC": "durable.codecs.FernetCodec", "CODEC_OPTIONS": {}}),
        pytest.raises(SystemCheckError, match=r"durable\.E030"),
    ):
        call_command("check")
    durable_settings.reload()


@pytest.mark.parametrize("allowed", [True, False])
def test_dashboard_and_admin_show_payloads_only_with_view_payloads(
    django_user_model: Any, allowed: bool
) -> None:
    with fernet(KEY_A):
        wid = run_secretive()
        user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_workflowexecution"))
        user.user_permissions.add(Permission.objects.get(codename="view_pendinginput"))
        if allowed:
            user.user_permissions.add(Permission.objects.get(codename="view_payloads"))
        client = client_for(user)

        page = client.get(reverse("durable:execution-detail", args=[wid])).content.decode()
        pk = WorkflowExecution.objects.get(workflow_id=wid).pk
        admin = client.get(reverse("admin:durable_workflowexecution_change", args=[pk]))
        pending = PendingInput.objects.get(execution_id=pk).pk
        response = client.get(reverse("admin:durable_pendinginput_change", args=[pending]))

    assert admin.status_code == response.status_code == 200
    admin_html = admin.content.decode() + response.content.decode()
    if allowed:
        assert SECRET in page
        assert SECRET in admin_html
    else:
        assert SECRET not in page
        assert "encrypted" in page
        assert SECRET not in admin_html
        assert "encrypted" in admin_html
