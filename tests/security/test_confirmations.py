"""Rotating "immediately" and revoking a secret still in use are confirmed first; the rotate
dialog starts on 24 hours and keeps a server-side refusal inside it."""

from __future__ import annotations

import re

from django.urls import reverse

from audit.services import Actor
from security import services

from .conftest import days, record_event

HTMX = {"HX-Request": "true"}


def rotate_url(client) -> str:
    return reverse("security:rotate", args=[client.client_id])


class TestImmediateRotation:
    def test_it_is_refused_without_the_confirmation(self, operator_client, prod_client, clock):
        client, _ = prod_client
        response = operator_client.post(rotate_url(client), {"grace_choice": "0"})
        assert response.status_code == 400 and client.secrets.count() == 1
        assert "Rotating immediately cuts off every consumer" in response.text

    def test_a_custom_zero_is_immediate_too(self, operator_client, prod_client, clock):
        client, _ = prod_client
        data = {"grace_choice": "custom", "custom_hours": "0"}
        assert operator_client.post(rotate_url(client), data).status_code == 400
        assert client.secrets.count() == 1


class TestRotateDialog:
    def test_focus_starts_on_24_hours_not_immediately(self, operator_client, prod_client):
        client, _ = prod_client
        text = operator_client.get(rotate_url(client), headers=HTMX).text
        [focused] = re.findall(r"<input [^>]*autofocus[^>]*>", text)
        assert 'value="24h"' in focused and "checked" in focused

    def test_the_htmx_form_answers_into_the_dialog(self, operator_client, prod_client):
        client, _ = prod_client
        text = operator_client.get(rotate_url(client), headers=HTMX).text
        assert 'hx-target="#rotate-dialog-modal"' in text

    def test_a_refusal_comes_back_as_the_dialog_with_its_message(
        self, operator_client, prod_client, clock
    ):
        client, _ = prod_client
        for _ in range(2):
            services.client_secret_rotate(actor=Actor.cli(), client=client, grace=days(7))
        response = operator_client.post(rotate_url(client), {"grace_choice": "24h"}, headers=HTMX)
        assert response.status_code == 409
        body = response.text.lstrip()
        assert body.startswith('<article id="rotate-dialog"')
        assert "already has 3 valid secrets" in body and "data-error-summary" in body

    def test_a_done_rotation_sends_htmx_to_the_secret_page(self, operator_client, prod_client):
        client, _ = prod_client
        response = operator_client.post(rotate_url(client), {"grace_choice": "24h"}, headers=HTMX)
        assert response["HX-Redirect"] == reverse("clients:secret", args=[client.client_id])

    def test_custom_until_takes_iso_8601_with_an_offset(self, operator_client, prod_client, clock):
        client, old_plain = prod_client
        data = {"grace_choice": "custom", "custom_until": "2026-03-03T10:00+01:00"}
        assert operator_client.post(rotate_url(client), data).status_code == 302
        text = operator_client.get(rotate_url(client)).text
        assert 'placeholder="2026-12-31T18:00Z"' in text and "datetime-local" not in text


class TestRevokeInUse:
    def test_it_says_the_secret_is_in_use_with_its_last_use(
        self, operator_client, prod_client, clock
    ):
        client, _ = prod_client
        secret = client.secrets.get()
        record_event(secret, ip="10.9.8.7")
        url = reverse("security:revoke_secret", args=[client.client_id, secret.pk])
        text = operator_client.get(url).text
        assert "This secret is still in use:" in text and "from 10.9.8.7" in text
        assert "although it is in use" in text

    def test_an_unused_secret_says_never_used(self, operator_client, prod_client, clock):
        client, _ = prod_client
        secret = client.secrets.get()
        url = reverse("security:revoke_secret", args=[client.client_id, secret.pk])
        text = operator_client.get(url).text
        assert "Never used." in text and "still in use" not in text
