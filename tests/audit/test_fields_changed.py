from __future__ import annotations

from audit.services import fields_changed


class TestFieldsChanged:
    def test_it_keeps_only_the_fields_that_differ(self):
        before = {"name": "Billing", "networks": ["10.0.0.0/8"], "sensitive": False}
        after = {"name": "Billing", "networks": [], "sensitive": True}
        assert fields_changed(before, after) == (
            {"networks": ["10.0.0.0/8"], "sensitive": False},
            {"networks": [], "sensitive": True},
        )

    def test_it_is_empty_when_nothing_changed(self):
        assert fields_changed({"a": 1}, {"a": 1}) == ({}, {})
