"""SCIM errors (RFC 7644 §3.12): one exception, rendered as a SCIM Error response."""

from __future__ import annotations

from fastapi.responses import JSONResponse

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json"


class ScimError(Exception):
    """A refusal with its HTTP status, SCIM ``scimType`` (for 400s) and a specific detail."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, str]:
        out = {"schemas": [SCIM_ERROR], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            out["scimType"] = self.scim_type
        return out  # type: ignore[return-value]

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, media_type=SCIM_MEDIA_TYPE)


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


def not_found(kind: str, ident: str) -> ScimError:
    return ScimError(404, f"no {kind} '{ident}'")
