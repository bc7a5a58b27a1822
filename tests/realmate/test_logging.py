import json
import logging

from realmate.logging import JsonFormatter, SkipHealthcheckAccess


def test_log_lines_are_json_with_the_ids_passed_as_extra():
    record = logging.LogRecord("chat.services", logging.INFO, __file__, 1, "message stored", (), None)
    record.conversation_id = "6a41b347-8d80-4ce9-84ba-7af66f369f6a"
    record.message_id = "49108c71-4dca-4af3-9f32-61bc745926e2"

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "message stored"
    assert line["level"] == "INFO"
    assert line["logger"] == "chat.services"
    assert line["conversation_id"] == record.conversation_id
    assert line["message_id"] == record.message_id
    assert line["time"].endswith("+00:00")


def test_exceptions_are_kept_on_the_same_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())

    line = json.loads(JsonFormatter().format(record))

    assert "ValueError: boom" in line["exc_info"]


def access_record(user_agent: str) -> logging.LogRecord:
    """gunicorn's access record: its arguments are the atoms of the access log format, `a` the user agent."""
    atoms = {"h": "127.0.0.1", "r": "GET /healthz HTTP/1.1", "s": "200", "a": user_agent}
    return logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(h)s %(r)s %(s)s", (atoms,), None)


def test_the_container_healthcheck_leaves_no_access_line():
    assert SkipHealthcheckAccess().filter(access_record("realmate-healthcheck")) is False


def test_other_clients_of_healthz_are_still_logged():
    assert SkipHealthcheckAccess().filter(access_record("kube-probe/1.30")) is True
