"""Each implemented detection: generated traffic that must fire it, and similar normal
traffic that must not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.detections import CATALOGUE, DETECTIONS
from alerts.evaluation import detections_evaluate
from alerts.models import Alert
from alerts.services import detection_setting_update
from audit.services import Actor
from clients.models import Client

from .conftest import NOW, Reason, traffic

pytestmark = pytest.mark.django_db


def alerts(rule: str) -> list[Alert]:
    return list(Alert.objects.filter(rule=rule))


class TestCatalogue:
    def test_it_defines_every_detection_with_its_texts(self):
        rules = {d.rule for d in CATALOGUE}
        assert rules == {
            "brute_force",
            "credential_stuffing",
            "new_network",
            "allowlist_violation",
            "retired_credential",
            "scope_probing",
            "volume_anomaly",
            "token_not_cached",
            "dormant_client",
            "sustained_rate_limiting",
        }
        for d in CATALOGUE:
            assert d.explanation and d.remediation and d.false_positives and d.signal
            assert d.threshold >= 1 and 60 <= d.window_seconds <= 3600
            assert d.evaluate is not None, d.rule

    def test_it_explains_with_the_evidence(self):
        evidence = {"failures": 25, "window": "5 minutes", "addresses": 2, "threshold": 20}
        assert DETECTIONS["brute_force"].explain(evidence) == (
            "25 requests presented a wrong secret for this client within 5 minutes, from 2 "
            "address(es); the threshold is 20."
        )

    def test_it_leaves_out_the_clauses_whose_numbers_are_missing(self):
        # An alert raised outside an evaluation (a sample, an import) with partial evidence.
        evidence = {"failures": 240, "window_seconds": 300}
        assert DETECTIONS["brute_force"].explain(evidence) == (
            "240 requests presented a wrong secret for this client within 5 minutes."
        )
        assert DETECTIONS["dormant_client"].explain({"idle_days": 45}) == (
            "This client got a token after 45 days without one."
        )

    def test_it_falls_back_to_the_signal_without_the_first_numbers(self):
        for d in CATALOGUE:
            assert d.explain({}) == d.signal, d.rule


class TestBruteForce:
    def test_it_fires_on_many_wrong_secrets_for_one_client(self, make_client, clock):
        client, _ = make_client("Billing", environment="production")
        traffic(15, client_id=client.client_id, reason=Reason.BAD_SECRET, ip="203.0.113.5")
        traffic(10, client_id=client.client_id, reason=Reason.BAD_SECRET, ip="203.0.113.9")
        detections_evaluate()
        (alert,) = alerts("brute_force")
        assert alert.client == client and alert.environment == "production"
        assert alert.evidence["failures"] == 25 and alert.evidence["addresses"] == 2
        assert alert.evidence["threshold"] == 20 and len(alert.evidence["sample_event_ids"]) == 5
        assert alert.severity == "high" and alert.status == "open"

    def test_it_ignores_a_few_failures_among_normal_traffic(self, make_client, clock):
        client, _ = make_client("Billing")
        traffic(200, client_id=client.client_id)
        traffic(5, client_id=client.client_id, reason=Reason.BAD_SECRET)
        detections_evaluate()
        assert alerts("brute_force") == []

    def test_it_ignores_old_failures_even_when_ingested_now(self, make_client, clock):
        client, _ = make_client("Billing")
        traffic(
            500,
            client_id=client.client_id,
            reason=Reason.BAD_SECRET,
            end=NOW - timedelta(days=3),
            source="keycloak",
        )
        detections_evaluate()
        assert alerts("brute_force") == []

    def test_it_reads_ingested_events_of_other_services(self, clock):
        traffic(30, client_id="legacy-app", reason=Reason.BAD_SECRET, source="keycloak")
        detections_evaluate()
        (alert,) = alerts("brute_force")
        assert alert.client is None and alert.subject_client_id == "legacy-app"


class TestCredentialStuffing:
    def test_it_fires_on_one_address_trying_many_client_ids(self, clock):
        for n in range(12):
            traffic(
                2,
                client_id=f"guess-{n}",
                reason=Reason.UNKNOWN_CLIENT,
                known=False,
                ip="203.0.113.66",
            )
        detections_evaluate()
        (alert,) = alerts("credential_stuffing")
        assert alert.source_network == "203.0.113.66/32" and alert.subject_client_id == ""
        assert alert.evidence["client_ids"] == 12 and alert.evidence["unknown_client_ids"] == 12

    def test_it_fires_on_a_slash_24_spreading_the_attempts(self, clock):
        for n in range(12):
            traffic(
                1,
                client_id=f"guess-{n}",
                reason=Reason.UNKNOWN_CLIENT,
                known=False,
                ip=f"203.0.113.{n + 1}",
            )
        detections_evaluate()
        (alert,) = alerts("credential_stuffing")
        assert alert.source_network == "203.0.113.0/24" and alert.evidence["addresses"] == 12

    def test_it_groups_ipv6_by_slash_64(self, clock):
        for n in range(12):
            traffic(
                1, client_id=f"guess-{n}", reason=Reason.BAD_SECRET, ip=f"2001:db8:1:2::{n + 1:x}"
            )
        detections_evaluate()
        (alert,) = alerts("credential_stuffing")
        assert alert.source_network == "2001:db8:1:2::/64"

    def test_it_ignores_a_nat_with_a_few_misconfigured_clients(self, clock):
        for n in range(4):
            traffic(5, client_id=f"service-{n}", reason=Reason.BAD_SECRET, ip="10.0.0.1")
        traffic(300, client_id="service-9", ip="10.0.0.1")
        detections_evaluate()
        assert alerts("credential_stuffing") == []


class TestAllowlistViolation:
    def test_it_fires_per_client_and_network(self, make_client, clock):
        client, _ = make_client("Payroll", allowed_networks=["10.0.0.0/8"])
        traffic(3, client_id=client.client_id, reason=Reason.IP_NOT_ALLOWED, ip="198.51.100.20")
        detections_evaluate()
        (alert,) = alerts("allowlist_violation")
        assert alert.client == client and alert.source_network == "198.51.100.0/24"
        assert alert.evidence["attempts"] == 3

    def test_it_ignores_traffic_from_inside_the_allowlist(self, make_client, clock):
        client, _ = make_client("Payroll", allowed_networks=["10.0.0.0/8"])
        traffic(100, client_id=client.client_id, ip="10.1.2.3")
        detections_evaluate()
        assert alerts("allowlist_violation") == []


class TestRetiredCredential:
    def test_it_fires_on_a_revoked_secret_in_use(self, make_client, clock):
        client, _ = make_client("Billing")
        secret = client.secrets.get()
        traffic(2, client_id=client.client_id, reason=Reason.REVOKED_SECRET, secret_id=secret.pk)
        traffic(1, client_id=client.client_id, reason=Reason.DISABLED_CLIENT)
        detections_evaluate()
        (alert,) = alerts("retired_credential")
        assert alert.evidence["secret_ids"] == [secret.pk]
        assert alert.evidence["reasons"] == {"revoked_secret": 2, "disabled_client": 1}
        assert "2 × revoked secret" in DETECTIONS["retired_credential"].explain(alert.evidence)

    def test_it_ignores_valid_secrets_and_wrong_ones(self, make_client, clock):
        client, _ = make_client("Billing")
        traffic(50, client_id=client.client_id)
        traffic(3, client_id=client.client_id, reason=Reason.BAD_SECRET)
        detections_evaluate()
        assert alerts("retired_credential") == []


class TestScopeProbing:
    def test_it_fires_on_several_distinct_scopes_not_held(self, make_client, make_scope, clock):
        held = make_scope("orders:read")
        client, _ = make_client("Shop", scopes=[held])
        for name in ("admin:all", "users:write", "billing:read", "orders:read admin:all"):
            traffic(1, client_id=client.client_id, reason=Reason.INVALID_SCOPE, scopes=name)
        detections_evaluate()
        (alert,) = alerts("scope_probing")
        assert alert.evidence["scopes"] == ["admin:all", "billing:read", "users:write"]

    def test_it_ignores_one_missing_grant_retried(self, make_client, clock):
        client, _ = make_client("Shop")
        traffic(20, client_id=client.client_id, reason=Reason.INVALID_SCOPE, scopes="orders:write")
        detections_evaluate()
        assert alerts("scope_probing") == []


class TestSustainedRateLimiting:
    def test_it_fires_on_a_client_limited_minute_after_minute(self, make_client, clock):
        client, _ = make_client("Chatty")
        traffic(
            60, client_id=client.client_id, reason=Reason.RATE_LIMITED, spread=timedelta(minutes=6)
        )
        detections_evaluate()
        (alert,) = alerts("sustained_rate_limiting")
        assert alert.client == client and alert.evidence["minutes"] >= 5

    def test_it_fires_on_an_address_with_unknown_clients(self, clock):
        traffic(
            60,
            client_id="",
            known=False,
            reason=Reason.RATE_LIMITED,
            ip="192.0.2.4",
            spread=timedelta(minutes=8),
        )
        detections_evaluate()
        (alert,) = alerts("sustained_rate_limiting")
        assert alert.source_network == "192.0.2.4/32"

    def test_it_ignores_a_short_burst(self, make_client, clock):
        client, _ = make_client("Chatty")
        traffic(
            200,
            client_id=client.client_id,
            reason=Reason.RATE_LIMITED,
            spread=timedelta(seconds=90),
        )
        detections_evaluate()
        assert alerts("sustained_rate_limiting") == []


class TestSettingsPerEnvironment:
    def test_a_production_threshold_applies_to_production_clients_only(self, make_client, clock):
        prod, _ = make_client("Prod", environment=Client.Environment.PRODUCTION)
        dev, _ = make_client("Dev", environment=Client.Environment.DEVELOPMENT)
        detection_setting_update(
            actor=Actor.cli(),
            rule="brute_force",
            environment="production",
            threshold=5,
            severity="critical",
        )
        for client in (prod, dev):
            traffic(8, client_id=client.client_id, reason=Reason.BAD_SECRET)
        detections_evaluate()
        (alert,) = alerts("brute_force")
        assert alert.client == prod and alert.severity == "critical"

    def test_a_disabled_rule_fires_nowhere(self, make_client, clock):
        client, _ = make_client("Prod")
        detection_setting_update(
            actor=Actor.cli(), rule="brute_force", environment="", enabled=False
        )
        traffic(80, client_id=client.client_id, reason=Reason.BAD_SECRET)
        detections_evaluate()
        assert alerts("brute_force") == []
