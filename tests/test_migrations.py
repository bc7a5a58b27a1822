"""The migrations build exactly what the models say: no column, index, constraint or view that no model declares,
none missing, and no model change without its migration."""

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

APPS = ("chat", "scheduler", "delivery")

pytestmark = pytest.mark.django_db


def test_no_model_change_is_missing_a_migration():
    out = StringIO()
    call_command("makemigrations", *APPS, "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.parametrize("model", [m for app in APPS for m in apps.get_app_config(app).get_models()], ids=str)
def test_a_migrated_table_has_the_models_columns_indexes_and_constraints(model):
    table = model._meta.db_table
    with connection.cursor() as cursor:
        columns = {column.name for column in connection.introspection.get_table_description(cursor, table)}
        found = connection.introspection.get_constraints(cursor, table)

    assert columns == {field.column for field in model._meta.concrete_fields}
    declared = {index.name for index in model._meta.indexes} | {c.name for c in model._meta.constraints}
    # What Django names itself: the primary key, foreign keys, a field's unique and NOT NULL checks, and their indexes.
    unnamed = {name for name, spec in found.items() if spec["unique"] and name not in declared}
    named = {name for name, spec in found.items() if not (spec["primary_key"] or spec["foreign_key"])} - unnamed
    named -= {name for name in named if name.startswith(table) and name.endswith(("_fk", "_idx", "_like", "_check"))}
    assert named == declared


def test_no_table_or_view_is_left_that_no_model_declares():
    tables = set(connection.introspection.table_names(include_views=True))
    ours = {table for table in tables if table.startswith(tuple(f"{app}_" for app in APPS))}
    assert ours == {model._meta.db_table for app in APPS for model in apps.get_app_config(app).get_models()}
