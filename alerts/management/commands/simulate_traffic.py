"""manage.py simulate_traffic: normal token traffic and named attacks against a running Keyward."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from alerts.detections import DETECTIONS
from alerts.simulator import (
    SCENARIOS,
    Simulation,
    alert_wait,
    forwarding_trusted,
    normal_population,
    normal_traffic,
)


class Command(BaseCommand):
    help = (
        "Drive the real token endpoint over HTTP: a normal population of 'sim normal N' "
        "clients, or one attack scenario per detection (--scenario), then wait for its "
        "alert. Runs against a Keyward sharing this database (it creates its clients "
        "through the services). Ctrl-C stops it cleanly."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Keyward's base URL.")
        parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="An attack to run.")
        parser.add_argument("--clients", type=int, default=5, help="Normal clients.")
        parser.add_argument(
            "--per-minute", type=float, default=6, help="Tokens a minute per normal client."
        )
        parser.add_argument(
            "--duration", type=float, default=60, help="Seconds of normal traffic (0: forever)."
        )
        parser.add_argument(
            "--wait", type=float, default=90, help="Seconds to wait for the alert (0: don't)."
        )
        parser.add_argument(
            "--forwarded",
            choices=["auto", "yes", "no"],
            default="auto",
            help="Send X-Forwarded-For (auto: when KEYWARD_TRUSTED_PROXIES trusts 127.0.0.1).",
        )
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--then-idle",
            action="store_true",
            help="Stay running after the normal traffic (honcho stops every process when one "
            "exits: bin/dev).",
        )
        parser.add_argument(
            "--startup-wait", type=float, default=5, help="Seconds to wait for the server."
        )

    def handle(self, *args, **options) -> None:
        url = options["url"].rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise CommandError("--url must be an http(s) URL", returncode=2)
        forwarded = {"auto": forwarding_trusted(), "yes": True, "no": False}[options["forwarded"]]
        sim = Simulation(base_url=url, write=self.stdout.write, forwarded=forwarded)
        if options["seed"] is not None:
            sim.rng.seed(options["seed"])
        self.stdout.write(
            f"Keyward at {url}; source addresses "
            + (
                "by X-Forwarded-For"
                if forwarded
                else "all 127.0.0.1 (KEYWARD_TRUSTED_PROXIES does not trust it here; "
                "--forwarded yes when the server does, as bin/dev's does)"
            )
        )
        if not sim.wait_until_up(options["startup_wait"]):
            raise CommandError(f"no answer from {url} within {options['startup_wait']:g} s")
        try:
            if options["scenario"]:
                self._scenario(sim, options["scenario"], options["wait"])
            else:
                self._normal(sim, options)
                if options["then_idle"]:
                    self.stdout.write("Normal traffic done; idle until stopped.")
                    while True:
                        time.sleep(3600)
        except KeyboardInterrupt:
            self.stdout.write(f"\nStopped after {sim.sent} requests {sim.statuses}.")
            return

    def _normal(self, sim: Simulation, options: dict) -> None:
        clients = normal_population(sim, options["clients"])
        duration = options["duration"]
        self.stdout.write(
            f"Normal traffic: {len(clients)} clients, ~{options['per_minute']:g} tokens a "
            f"minute each, {'until Ctrl-C' if not duration else f'{duration:g} s'}"
        )
        until = time.monotonic() + duration if duration else 0
        while not until or time.monotonic() < until:
            step_end = time.monotonic() + 10
            normal_traffic(
                sim,
                clients,
                per_minute=options["per_minute"],
                until=min(step_end, until) if until else step_end,
            )
            self.stdout.write(f"  {sim.sent} requests {sim.statuses}")

    def _scenario(self, sim: Simulation, name: str, wait: float) -> None:
        scenario = SCENARIOS[name]
        self.stdout.write(f"Scenario {name}: {scenario.what} (expect the {scenario.rule} alert)")
        started = timezone.now()
        scenario.run(sim)
        attack_end = timezone.now()
        self.stdout.write(f"  sent {sim.sent} requests {sim.statuses}")
        if not wait:
            return
        self.stdout.write(f"  waiting up to {wait:g} s for the alert …")
        alert = alert_wait(scenario.rule, since=started, timeout=wait)
        if alert is None:
            raise CommandError(f"no {scenario.rule} alert within {wait:g} s", returncode=1)
        seconds = (alert.updated_at - attack_end).total_seconds()
        self.stdout.write(
            self.style.SUCCESS(
                f"Alert #{alert.pk} {alert.rule} ({alert.severity}, {alert.status}) on "
                f"{alert.subject_label()}, {max(seconds, 0):.1f} s after the attack:"
            )
        )
        self.stdout.write(f"  {DETECTIONS[alert.rule].explain(alert.evidence)}")
