"""Reading ``multipart/form-data`` bodies with the standard library's e-mail parser.

Used by the CSRF check (the token of a file-upload form travels in the body, so uploads work
without JavaScript) and by the pages that take a file. The body-size limit of
:mod:`pasa.web.hardening` applies before either reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import PurePath


class MultipartError(ValueError):
    """The body is not a readable ``multipart/form-data`` form."""


@dataclass(frozen=True, slots=True)
class Multipart:
    fields: dict[str, str] = field(default_factory=dict)
    # name -> (file name without any directory, content); empty files are left out.
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


def is_multipart(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "multipart/form-data"


def parse_multipart(content_type: str, body: bytes) -> Multipart:
    """The fields and files of a ``multipart/form-data`` body sent with ``content_type``."""
    if not is_multipart(content_type):
        raise MultipartError("send the form as multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise MultipartError("the form could not be read: send it again")
    form = Multipart()
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            form.fields[name] = payload.decode("utf-8", "replace")
        elif payload:
            # A browser may send a full client path (old Edge): keep the last component only.
            form.files[name] = (PurePath(filename.replace("\\", "/")).name, payload)
    return form
