"""TokenEvent now belongs to analytics (see analytics/migrations/0002_tokenevent_from_audit.py, which
copies the rows into its own table first). audit forgets the model and drops the old table;
backwards, the table is recreated empty here and analytics' migration copies the rows back.
"""

from django.db import migrations


def table_drop(apps, schema_editor):
    schema_editor.delete_model(apps.get_model("audit", "TokenEvent"))


def table_recreate(apps, schema_editor):
    schema_editor.create_model(apps.get_model("audit", "TokenEvent"))


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_tokenevent_source"),
        ("analytics", "0002_tokenevent_from_audit"),
    ]

    operations = [
        # The table first, while the state still has the model to describe it.
        migrations.RunPython(table_drop, table_recreate),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="TokenEvent")],
            database_operations=[],
        ),
    ]
