"""The one error a service raises when it refuses a request, and the shape every error body has.

Every 4xx/5xx body is `{"code": <stable_snake_case>, "detail": <sentence>, "errors": {field: [...]}}`,
`errors` only for field problems. The codes are listed in api.errors.ERROR_CODES, docs/contract.md and the
OpenAPI schema.
"""

from http import HTTPStatus
from typing import Any


class ApplicationError(Exception):
    """A request the service understood and refuses: maps to `status` with a stable `code`."""

    def __init__(
        self,
        code: str,
        detail: str,
        status: HTTPStatus = HTTPStatus.BAD_REQUEST,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.errors = errors


def error_body(code: str, detail: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "detail": detail}
    if errors:
        body["errors"] = errors
    return body
