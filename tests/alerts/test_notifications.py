"""Notifications: routing, grouping and throttling, signed webhooks checked by the
verifiers printed in docs/alerts.md (Python, and Node in a subprocess), retries against a
failing receiver, email, the destinations page and the CLI, all audited."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import reverse

from alerts.crypto import secret_decrypt
from alerts.detections import Subject
from alerts.models import AlertDelivery, AlertDestination
from alerts.notifications import delivery_send, notifications_plan
from alerts.services import alert_raise, destination_create, destination_secret_rotate
from alerts.tasks import send_alert_delivery
from audit.models import AdminAction
from audit.services import Actor

from .conftest import NOW

pytestmark = pytest.mark.django_db

DOCS = Path(django_settings.BASE_DIR) / "docs" / "alerts.md"


def doc_block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), re.DOTALL)
    return next(block for block in blocks if marker in block)


def python_verifier():
    namespace: dict = {}
    exec(doc_block("python", "def verify_keyward_signature"), namespace)  # noqa: S102 - our docs
    return namespace["verify_keyward_signature"]


class Receiver:
    """A fake webhook receiver: answers each POST with the next status of `statuses`
    (then 200) and keeps the raw body and headers."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[tuple[bytes, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((body, dict(self.headers)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"down")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    fake = Receiver()
    yield fake
    fake.close()


@pytest.fixture
def webhook(receiver):
    destination, secret = destination_create(
        actor=Actor.cli(), name="oncall", kind="webhook", target=receiver.url, min_severity="medium"
    )
    return destination, secret


def open_alert(client_id="abc", rule="brute_force", severity=None, at=NOW):
    return alert_raise(
        rule=rule,
        subject=Subject(client_id=client_id),
        evidence={"failures": 30, "threshold": 20},
        seen_at=at,
        now=at,
        severity=severity,
    ).alert


def send_all():
    for delivery in AlertDelivery.objects.filter(status="pending"):
        delivery_send(delivery.pk)


class TestSecrets:
    def test_the_webhook_secret_is_stored_encrypted_and_shown_once(self, webhook):
        destination, secret = webhook
        assert secret.startswith("whsec_") and len(secret) > 40
        assert secret not in destination.secret_encrypted
        assert secret_decrypt(destination.secret_encrypted) == secret
        audit = AdminAction.objects.get(action="alert_destination.create")
        assert secret not in json.dumps(audit.after) and audit.after["secret"] == "generated"


class TestSignatures:
    def test_the_python_verifier_from_the_docs_accepts_a_delivery(self, webhook, receiver, clock):
        _destination, secret = webhook
        open_alert()
        send_all()
        ((body, headers),) = receiver.requests
        verify = python_verifier()
        header = headers["Keyward-Signature"]
        assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
        assert verify(body, header, secret)
        assert not verify(body + b" ", header, secret)
        assert not verify(body, header, "whsec_wrong")
        stamp = int(header.split(",")[0][2:])
        assert not verify(body, header, secret, now=stamp + 301)
        payload = json.loads(body)
        assert payload["type"] == "alert.opened" and payload["text"].startswith("[HIGH]")
        notified = AlertDelivery.objects.get().alert.timeline.get(kind="notified")
        assert notified.text == "Sent to oncall (webhook)."

    @pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
    def test_the_node_verifier_from_the_docs_accepts_a_delivery(self, webhook, receiver, tmp_path):
        # No stopped clock here: Node checks the timestamp against the real time.
        _destination, secret = webhook
        open_alert()
        send_all()
        ((body, headers),) = receiver.requests
        (tmp_path / "verify.js").write_text(doc_block("js", "function verifyKeywardSignature"))
        (tmp_path / "body.json").write_bytes(body)
        script = (
            "const {verifyKeywardSignature} = require('./verify.js');"
            "const body = require('fs').readFileSync('body.json');"
            "const [header, secret] = process.argv.slice(1);"
            "console.log(verifyKeywardSignature(body, header, secret),"
            " verifyKeywardSignature(Buffer.concat([body, Buffer.from(' ')]), header, secret));"
        )
        result = subprocess.run(
            ["node", "-e", script, headers["Keyward-Signature"], secret],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert result.stdout.split() == ["true", "false"]

    def test_during_a_rotation_both_secrets_sign(self, webhook, receiver, clock):
        destination, old = webhook
        new = destination_secret_rotate(actor=Actor.cli(), destination=destination)
        open_alert()
        send_all()
        ((body, headers),) = receiver.requests
        verify = python_verifier()
        header = headers["Keyward-Signature"]
        assert header.count("v1=") == 2
        assert verify(body, header, old) and verify(body, header, new)
        clock.shift(timedelta(hours=25))
        open_alert(client_id="other", at=NOW + timedelta(hours=25))
        send_all()
        (body, headers) = receiver.requests[-1]
        assert headers["Keyward-Signature"].count("v1=") == 1
        assert verify(body, headers["Keyward-Signature"], new)


class TestRouting:
    def test_it_routes_by_severity_and_environment(self, make_client, clock):
        prod, _ = make_client(environment="production")
        dev, _ = make_client(environment="development")
        make = destination_create
        only_prod, _ = make(
            actor=Actor.cli(),
            name="prod",
            kind="email",
            target="p@example.com",
            min_severity="low",
            environments=["production"],
        )
        critical, _ = make(
            actor=Actor.cli(),
            name="crit",
            kind="email",
            target="c@example.com",
            min_severity="critical",
        )
        for client in (prod, dev):
            alert_raise(
                rule="scope_probing",
                subject=Subject(client_id=client.client_id),
                evidence={},
                seen_at=NOW,
                client=client,
            )
        assert list(only_prod.deliveries.values_list("alert__client", flat=True)) == [prod.pk]
        assert critical.deliveries.count() == 0

    def test_email_destinations_get_a_subject_and_the_text(self, clock, mailbox):
        destination_create(
            actor=Actor.cli(), name="sec", kind="email", target="a@example.com, b@example.com"
        )
        open_alert()
        send_all()
        (message,) = mailbox
        assert message.subject == "[Keyward] high: Brute force on one client"
        assert message.to == ["a@example.com", "b@example.com"] and "/alerts/" in message.body


@pytest.fixture
def mailbox(settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    return mail.outbox


class TestGroupingAndThrottling:
    def test_a_storm_sends_one_message_then_one_update(self, webhook, clock, settings):
        destination, _ = webhook
        for n in range(50):
            open_alert(client_id=f"victim-{n}")
        assert destination.deliveries.count() == 1  # the first alert; 49 folded
        assert notifications_plan(now=NOW + timedelta(minutes=5)) == 0  # throttled
        later = NOW + timedelta(seconds=settings.KEYWARD_ALERT_THROTTLE_SECONDS + 1)
        clock.move_to(later)
        assert notifications_plan(now=later) == 1
        update = destination.deliveries.get(kind="update")
        assert update.payload["type"] == "alerts.update" and update.payload["new"] == 49
        assert update.payload["changed"] == 49 and len(update.payload["alerts"]) == 20
        assert "49 new, 49 active" in update.payload["text"]
        assert notifications_plan(now=later + timedelta(hours=1)) == 0  # nothing changed since

    def test_suppressed_alerts_notify_nobody(self, webhook, clock):
        from alerts.services import suppression_create

        destination, _ = webhook
        suppression_create(
            actor=Actor.cli(),
            rule="brute_force",
            reason="test",
            expires_at=NOW + timedelta(hours=1),
        )
        open_alert()
        assert destination.deliveries.count() == 0


class TestRetries:
    def test_a_failing_receiver_is_retried_until_it_answers(self, clock):
        flaky = Receiver(statuses=[503, 502])
        try:
            destination, _ = destination_create(
                actor=Actor.cli(), name="flaky", kind="webhook", target=flaky.url
            )
            alert = open_alert()
            delivery = destination.deliveries.get()
            assert send_alert_delivery.apply(args=[delivery.pk]).successful()
            delivery.refresh_from_db()
            assert len(flaky.requests) == 3 and delivery.attempts == 3
            assert (delivery.status, delivery.response_code) == ("sent", 200)
            assert delivery.alert == alert
        finally:
            flaky.close()

    def test_a_dead_receiver_ends_failed_and_visible(self, clock, admin_client):
        dead = Receiver(statuses=[500] * 20)
        try:
            destination, _ = destination_create(
                actor=Actor.cli(), name="dead", kind="webhook", target=dead.url
            )
            open_alert()
            delivery = destination.deliveries.get()
            assert send_alert_delivery.retry_backoff is True and send_alert_delivery.acks_late
            assert send_alert_delivery.apply(args=[delivery.pk]).failed()
            delivery.refresh_from_db()
            assert delivery.attempts == 7 and delivery.status == "failed"
            assert "HTTP 500" in delivery.last_error
            page = admin_client.get(reverse("alerts:destination_detail", args=[destination.pk]))
            assert "HTTP 500" in page.content.decode() and "failed" in page.content.decode()
        finally:
            dead.close()

    def test_a_4xx_answer_is_not_retried(self, clock):
        refusing = Receiver(statuses=[404])
        try:
            destination, _ = destination_create(
                actor=Actor.cli(), name="gone", kind="webhook", target=refusing.url
            )
            open_alert()
            delivery = destination.deliveries.get()
            assert send_alert_delivery.apply(args=[delivery.pk]).failed()
            delivery.refresh_from_db()
            assert len(refusing.requests) == 1 and delivery.status == "failed"
        finally:
            refusing.close()


class TestDestinationsPage:
    def test_admins_add_a_webhook_and_see_its_secret_once(self, admin_client, admin_user):
        data = {
            "name": "slack",
            "kind": "webhook",
            "target": "https://hooks.example.com/x",
            "min_severity": "high",
        }
        response = admin_client.post(reverse("alerts:destinations"), data, follow=True)
        assert response.redirect_chain[0][1] == 302  # POST-redirect-GET
        assert response["Cache-Control"] == "no-store"
        destination = AlertDestination.objects.get()
        assert secret_decrypt(destination.secret_encrypted) in response.content.decode()
        again = admin_client.get(response.redirect_chain[0][0]).content.decode()
        assert secret_decrypt(destination.secret_encrypted) not in again
        assert "already shown" in again
        assert AdminAction.objects.get(action="alert_destination.create").actor == admin_user
        detail = admin_client.get(reverse("alerts:destination_detail", args=[destination.pk]))
        assert secret_decrypt(destination.secret_encrypted) not in detail.content.decode()

    def test_operators_are_refused(self, operator_client):
        assert operator_client.get(reverse("alerts:destinations")).status_code == 403
        data = {"name": "x", "kind": "email", "target": "x@example.com", "min_severity": "high"}
        assert operator_client.post(reverse("alerts:destinations"), data).status_code == 403
        assert not AlertDestination.objects.exists()

    def test_a_bad_url_is_a_form_error(self, admin_client):
        data = {"name": "x", "kind": "webhook", "target": "ftp://nope", "min_severity": "high"}
        assert admin_client.post(reverse("alerts:destinations"), data).status_code == 400

    def test_remove_is_audited(self, admin_client, webhook):
        destination, _ = webhook
        admin_client.post(reverse("alerts:destination_delete", args=[destination.pk]))
        assert not AlertDestination.objects.exists()
        assert AdminAction.objects.filter(action="alert_destination.delete").exists()


class TestCli:
    def test_add_list_remove(self):
        out = StringIO()
        call_command(
            "alert_destination",
            "add",
            "ops",
            "webhook",
            "https://hooks.example.com/k",
            "--min-severity",
            "low",
            "--environment",
            "production",
            stdout=out,
        )
        lines = out.getvalue().splitlines()
        assert lines[0] == "Added webhook destination 'ops'." and lines[2].startswith("whsec_")
        destination = AlertDestination.objects.get()
        assert destination.environments == ["production"] and destination.min_severity == "low"
        out = StringIO()
        call_command("alert_destination", "list", stdout=out)
        assert "ops\twebhook\thttps://hooks.example.com/k" in out.getvalue()
        assert "whsec_" not in out.getvalue()
        call_command("alert_destination", "remove", "ops", stdout=StringIO())
        actions = set(
            AdminAction.objects.filter(actor_label="cli").values_list("action", flat=True)
        )
        assert actions == {"alert_destination.create", "alert_destination.delete"}

    def test_bad_input_is_one_line_with_status_2(self):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError) as failure:
            call_command("alert_destination", "add", "x", "email", "not-an-address")
        assert failure.value.returncode == 2
        with pytest.raises(CommandError):
            call_command("alert_destination", "remove", "missing")
