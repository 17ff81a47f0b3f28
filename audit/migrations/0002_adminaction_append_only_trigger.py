from __future__ import annotations

from django.db import migrations

# Defence in depth for the append-only audit trail: on PostgreSQL the database itself
# refuses DELETE and any UPDATE other than Django's SET_NULL of a deleted user's actor_id.
CREATE_TRIGGER = """
CREATE OR REPLACE FUNCTION audit_adminaction_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id')
       AND NEW.actor_id IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_adminaction is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_adminaction_append_only
BEFORE UPDATE OR DELETE ON audit_adminaction
FOR EACH ROW EXECUTE FUNCTION audit_adminaction_append_only();
"""

DROP_TRIGGER = """
DROP TRIGGER IF EXISTS audit_adminaction_append_only ON audit_adminaction;
DROP FUNCTION IF EXISTS audit_adminaction_append_only();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRIGGER)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
