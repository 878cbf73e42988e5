"""XML-RPC on the wire: requests parsed by defusedxml's expat parser, responses and faults encoded.

defusedxml refuses DTDs with entity declarations and external entities, so a "billion laughs" or
file-reading request fails to parse instead of expanding.
"""

from __future__ import annotations

import re
import xmlrpc.client
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.xmlrpc import DefusedExpatParser

# XML 1.0 cannot carry these; a child that prints them must not make the whole response unparseable.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class BadRequest(Exception):
    """The body is not an XML-RPC method call."""


def decode_request(body: bytes) -> tuple[str, tuple[Any, ...]]:
    """(methodName, params) of a methodCall; BadRequest for anything else."""
    unmarshaller = xmlrpc.client.Unmarshaller(use_builtin_types=False)
    parser = DefusedExpatParser(unmarshaller)
    try:
        parser.feed(body)
        parser.close()
        params = unmarshaller.close()
    except (DefusedXmlException, xmlrpc.client.ResponseError, ValueError, TypeError, IndexError,
            KeyError, AttributeError, OverflowError) as exc:
        raise BadRequest(f"unmarshallable: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # expat raises its own ExpatError subclasses; all mean "not XML-RPC"
        raise BadRequest(f"unmarshallable: {type(exc).__name__}: {exc}") from None
    method = unmarshaller.getmethodname()
    if not isinstance(method, str) or not method:
        raise BadRequest("no methodName")
    return method, tuple(params)


def clean_text(text: str) -> str:
    """Replace characters XML 1.0 cannot represent with U+FFFD."""
    return _INVALID_XML.sub("\ufffd", text)


def encode_response(value: Any) -> bytes:
    """A methodResponse carrying ``value``."""
    return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False).encode("utf-8")


def encode_fault(code: int, text: str) -> bytes:
    """A methodResponse carrying a fault."""
    return xmlrpc.client.dumps(xmlrpc.client.Fault(int(code), clean_text(text)), methodresponse=True).encode("utf-8")
