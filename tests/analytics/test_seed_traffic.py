"""manage.py seed_traffic: clients and events in bulk, with rollups equal to a recount."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from analytics.models import TokenEvent
from analytics.seed import SEED_NAME
from clients.models import Client
from reviews.models import Finding
from reviews.scan import findings_scan

from .test_rollups import recount, stored

pytestmark = pytest.mark.django_db(transaction=True)


class TestSeedTraffic:
    def test_it_loads_clients_events_and_their_rollups(self):
        out = StringIO()
        call_command("seed_traffic", clients=20, events=3000, days=3, seed=4, stdout=out)
        assert Client.objects.filter(name__startswith=SEED_NAME).count() == 20
        assert TokenEvent.objects.count() == 3000
        assert TokenEvent.objects.values("source").distinct().count() > 1
        assert stored() == recount()
        assert "3,000 events over 3 days" in out.getvalue()

    def test_it_reuses_the_seed_clients_of_an_earlier_run(self):
        call_command("seed_traffic", clients=5, events=10, days=1, stdout=StringIO())
        call_command("seed_traffic", clients=8, events=10, days=1, stdout=StringIO())
        assert Client.objects.filter(name__startswith=SEED_NAME).count() == 8
        assert TokenEvent.objects.count() == 20
        assert stored() == recount()

    def test_it_adds_nothing_with_if_empty_once_events_exist(self):
        call_command("seed_traffic", clients=3, events=10, days=1, if_empty=True, stdout=StringIO())
        out = StringIO()
        call_command("seed_traffic", clients=3, events=10, days=1, if_empty=True, stdout=out)
        assert TokenEvent.objects.count() == 10
        assert "no demo traffic added" in out.getvalue()

    def test_its_clients_have_an_owner_so_the_review_does_not_flag_them(self):
        call_command("seed_traffic", clients=4, events=10, days=1, stdout=StringIO())
        assert set(Client.objects.values_list("owner_email", flat=True)) == {"platform@example.com"}
        findings_scan()
        assert not Finding.objects.filter(kind=Finding.Kind.NO_OWNER).exists()
