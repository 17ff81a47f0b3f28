"""Usage per grant (reviews/selectors.py) from the ScopeUsageHour rollup of every source."""

from __future__ import annotations

import pytest

from reviews import selectors

from .conftest import days

pytestmark = pytest.mark.django_db


class TestGrantUsage:
    def test_it_sums_every_source(self, clock, make_scope, make_client, use):
        scope = make_scope("orders:read")
        client, _ = make_client(scopes=[scope])
        use(client, "orders:read", source="keyward")
        clock.shift(days(2))
        use(client, "orders:read", source="keycloak")
        use(client, "orders:read", source="keycloak")
        [usage] = selectors.client_grants_usage(client)
        assert (usage.requested_30, usage.issued_30) == (3, 3)
        assert usage.last_requested.date() == usage.last_issued.date()
        assert usage.recency() == "this week"

    def test_it_counts_a_token_without_explicit_scope_for_every_scope_it_carried(
        self, clock, make_scope, make_client, use
    ):
        read, write = make_scope("orders:read"), make_scope("orders:write")
        client, _ = make_client(scopes=[read, write])
        use(client, "orders:read orders:write", explicit=False)
        usages = selectors.client_grants_usage(client)
        assert [(u.grant.scope.name, u.requested_30, u.issued_30) for u in usages] == [
            ("orders:read", 1, 1),
            ("orders:write", 1, 1),
        ]

    def test_it_separates_30_and_90_days(self, clock, make_scope, make_client, use):
        scope = make_scope("orders:read")
        client, _ = make_client(scopes=[scope])
        use(client, "orders:read")
        clock.shift(days(45))
        [usage] = selectors.client_grants_usage(client)
        assert (usage.requested_30, usage.requested_90) == (0, 1)
        assert usage.recency() == "90 days"

    def test_it_reports_never_for_an_unused_grant(self, clock, make_scope, make_client):
        client, _ = make_client(scopes=[make_scope("orders:read")])
        [usage] = selectors.client_grants_usage(client)
        assert usage.last_used is None and usage.recency() == "never"

    def test_it_lists_the_holders_of_a_scope(self, clock, make_scope, make_client, use):
        scope = make_scope("orders:read")
        busy, _ = make_client("Busy", scopes=[scope])
        make_client("Idle", scopes=[scope])
        use(busy, "orders:read", source="okta")
        usages = selectors.scope_grants_usage(scope)
        assert [(u.grant.client.name, u.issued_30) for u in usages] == [("Busy", 1), ("Idle", 0)]

    def test_it_filters_the_matrix(self, clock, make_scope, make_client):
        secret = make_scope("payments:refund", sensitive=True, owning_team="payments")
        plain = make_scope("orders:read", owning_team="commerce")
        make_client(
            "Prod", scopes=[secret, plain], environment="production", scope_reason="refunds"
        )
        make_client("Dev", scopes=[plain], environment="development")
        matrix = selectors.usage_matrix(sensitive_only=True)
        assert [c.name for c in matrix.clients] == ["Prod"]
        assert [s.name for s in matrix.scopes] == ["payments:refund"]
        matrix = selectors.usage_matrix(environment="development")
        assert [c.name for c in matrix.clients] == ["Dev"]
        matrix = selectors.usage_matrix(team="commerce")
        assert {c.name for c in matrix.clients} == {"Prod", "Dev"}
