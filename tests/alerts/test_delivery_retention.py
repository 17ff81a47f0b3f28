"""The delivery log's retention: deliveries older than KEYWARD_ALERT_DELIVERY_RETENTION_DAYS
are deleted in batches by an hourly beat task; newer ones, pending or not, stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from alerts.models import AlertDelivery
from alerts.notifications import deliveries_prune
from alerts.services import destination_create
from alerts.tasks import prune_alert_deliveries
from audit.services import Actor

from .conftest import NOW


@pytest.fixture
def destination(db):
    created, _secret = destination_create(
        actor=Actor.cli(), name="oncall", kind="webhook", target="https://hooks.example.com/x"
    )
    return created


def deliver(destination, *, status="sent") -> AlertDelivery:
    """A delivery logged now (the test's clock)."""
    return AlertDelivery.objects.create(
        destination=destination,
        rule="brute_force",
        kind=AlertDelivery.Kind.OPENED,
        payload={"text": "x"},
        status=status,
        created_at=timezone.now(),
    )


class TestDeliveriesPrune:
    def test_it_deletes_deliveries_past_the_retention_and_keeps_the_rest(
        self, destination, time_machine
    ):
        time_machine.move_to(NOW, tick=False)
        old = [deliver(destination), deliver(destination, status="failed")]
        time_machine.shift(timedelta(days=60))
        recent = deliver(destination, status="pending")
        time_machine.shift(timedelta(days=31))  # the first ones are 91 days old now

        assert deliveries_prune() == 2
        assert list(AlertDelivery.objects.all()) == [recent]
        assert not AlertDelivery.objects.filter(pk__in=[d.pk for d in old]).exists()

    def test_it_deletes_in_batches_until_none_is_left(self, destination, time_machine):
        time_machine.move_to(NOW, tick=False)
        for _ in range(7):
            deliver(destination)
        time_machine.shift(timedelta(days=91))
        assert deliveries_prune(batch=3) == 7
        assert not AlertDelivery.objects.exists()

    def test_the_window_is_configurable(self, destination, time_machine, settings):
        settings.KEYWARD_ALERT_DELIVERY_RETENTION_DAYS = 7
        time_machine.move_to(NOW, tick=False)
        deliver(destination)
        time_machine.shift(timedelta(days=6))
        assert deliveries_prune() == 0
        time_machine.shift(timedelta(days=2))
        assert deliveries_prune() == 1

    def test_the_default_is_ninety_days(self):
        assert django_settings.KEYWARD_ALERT_DELIVERY_RETENTION_DAYS == 90


class TestPruneTask:
    def test_beat_runs_it_hourly(self):
        entries = [
            entry
            for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
            if entry["task"] == "alerts.tasks.prune_alert_deliveries"
        ]
        assert len(entries) == 1 and entries[0]["schedule"].hour == set(range(24))

    def test_it_prunes(self, destination, time_machine):
        time_machine.move_to(NOW, tick=False)
        deliver(destination)
        time_machine.shift(timedelta(days=100))
        assert prune_alert_deliveries.delay().get() == 1
