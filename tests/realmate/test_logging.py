import json
import logging

from realmate.logging import JsonFormatter


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
