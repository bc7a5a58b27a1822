import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from chat.db import PreparedStatement

# A parameter used twice and parameters given out of order: EXECUTE must pass them in the declared order.
SUM_AND_LABEL = PreparedStatement(
    "test_sum_and_label",
    "SELECT %(a)s + %(b)s + %(a)s, %(label)s",
    a="int",
    b="int",
    label="text",
)

pytestmark = pytest.mark.django_db(transaction=True)


def run(**params):
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        SUM_AND_LABEL.execute(cursor, **params)
        row = cursor.fetchone()
    return row, [query["sql"].split(" ", 1)[0] for query in queries]


def test_a_session_prepares_once_then_executes():
    connection.close()

    first, first_statements = run(label="x", b=10, a=1)
    second, second_statements = run(label="y", b=20, a=2)

    assert first == (12, "x")
    assert second == (24, "y")
    assert first_statements == ["PREPARE", "EXECUTE"]
    assert second_statements == ["EXECUTE"]


def test_a_new_session_prepares_again():
    run(a=1, b=1, label="x")
    connection.close()

    row, statements = run(a=1, b=1, label="x")

    assert row == (3, "x")
    assert statements == ["PREPARE", "EXECUTE"]


def test_a_rollback_keeps_the_statement_prepared():
    connection.close()
    with transaction.atomic():
        run(a=1, b=1, label="x")
        transaction.set_rollback(True)

    row, statements = run(a=1, b=2, label="z")

    assert row == (4, "z")
    assert statements == ["EXECUTE"]


def test_a_name_can_be_given_to_one_statement_only():
    with pytest.raises(ValueError, match="already named"):
        PreparedStatement("test_sum_and_label", "SELECT 1")
