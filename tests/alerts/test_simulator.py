"""manage.py simulate_traffic against a live server: the real token endpoint over HTTP, the
Redis buffer, the drain, then the detections."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from alerts.evaluation import detections_evaluate
from alerts.models import Alert
from analytics.drain import token_events_drain
from analytics.models import TokenEvent
from clients.models import Client

pytestmark = pytest.mark.django_db(transaction=True)


def simulate(live_server, *args: str) -> str:
    out = io.StringIO()
    call_command(
        "simulate_traffic",
        "--url",
        live_server.url,
        "--wait",
        "0",
        "--forwarded",
        "no",
        *args,
        stdout=out,
    )
    token_events_drain()
    detections_evaluate()
    return out.getvalue()


class TestSimulateTraffic:
    def test_normal_traffic_gets_tokens_and_raises_nothing(self, live_server):
        out = simulate(live_server, "--clients", "3", "--per-minute", "120", "--duration", "3")
        assert "{200: " in out and "401" not in out
        assert Client.objects.filter(name__startswith="sim normal").count() == 3
        assert TokenEvent.objects.filter(outcome="success").count() >= 3
        assert not Alert.objects.exists()

    def test_a_rerun_gives_the_same_clients_fresh_secrets(self, live_server):
        simulate(live_server, "--clients", "2", "--duration", "1")
        out = simulate(live_server, "--clients", "2", "--per-minute", "120", "--duration", "2")
        assert Client.objects.filter(name__startswith="sim normal").count() == 2
        assert "401" not in out

    def test_without_a_trusted_proxy_it_says_every_request_comes_from_here(self, live_server):
        out = simulate(live_server, "--scenario", "brute-force")
        assert "all 127.0.0.1" in out and "--forwarded yes" in out
        assert "from 127.0.0.1" in out and "5 addresses" not in out
        assert Alert.objects.filter(rule="brute_force").count() == 1

    def test_the_scope_probing_scenario_fires_its_rule(self, live_server):
        out = simulate(live_server, "--scenario", "scope-probing")
        assert "sent 4 requests {400: 4}" in out
        assert Alert.objects.filter(rule="scope_probing").count() == 1

    def test_the_new_network_scenario_backfills_history_then_fires(self, live_server):
        simulate(live_server, "--scenario", "new-network")
        (alert,) = Alert.objects.filter(rule="new_network")
        assert alert.source_network == "127.0.0.0/24"  # no trusted proxy: the local network
        assert TokenEvent.objects.filter(source_ip__startswith="100.66.1.").count() > 500

    def test_it_refuses_a_url_that_is_not_http(self):
        with pytest.raises(CommandError, match="http") as refused:
            call_command("simulate_traffic", "--url", "file:///etc/passwd")
        assert refused.value.returncode == 2  # bad input, as every command answers it
