"""A database made before the migrations were squashed is refused with what to do, not
half-migrated (`migrate` stopped on "index notification_due_idx already exists")."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db.migrations.recorder import MigrationRecorder

from localdev import bootstrap


@pytest.mark.django_db
def test_a_migration_the_checkout_no_longer_has_is_named() -> None:
    assert bootstrap.migrations_not_on_disk() == []
    MigrationRecorder.Migration.objects.create(app="domains", name="0014_external_identity_plural")
    MigrationRecorder.Migration.objects.create(app="auth", name="9999_not_ours")
    assert bootstrap.migrations_not_on_disk() == ["domains.0014_external_identity_plural"]


@pytest.mark.django_db
def test_set_up_stops_with_the_reason_before_migrating(tmp_path: Path) -> None:
    MigrationRecorder.Migration.objects.create(app="domains", name="0002_notifications")
    with pytest.raises(SystemExit, match="delete var/db.sqlite3"):
        bootstrap.setup(tmp_path)
