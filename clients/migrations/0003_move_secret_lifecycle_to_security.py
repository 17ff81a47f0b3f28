"""SecretPolicy, SecretFinding and NotificationLog now belong to the security app.

State only: clients forgets the three models here and security/migrations/0001_initial.py
adopts them, renaming their tables and keeping every row. Nothing refers to these models,
so dropping them from clients' state leaves no dangling relation.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0002_secret_lifecycle"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="NotificationLog"),
                migrations.DeleteModel(name="SecretFinding"),
                migrations.DeleteModel(name="SecretPolicy"),
            ],
            # The tables stay as they are; security renames them.
            database_operations=[],
        ),
    ]
