"""XML-RPC on the wire: requests parsed by defusedxml's ElementTree, responses and faults encoded.

defusedxml refuses DTDs with entity declarations and external entities, so a "billion laughs" or
file-reading request fails to parse instead of expanding. The marshalling is the few types of the
XML-RPC spec, written here rather than taken from xmlrpc.client: that module and defusedxml.xmlrpc pull
in http.client, http.server, email and decimal, 4.6 MB of the daemon's memory for 100 lines of work.
Responses are byte-for-byte what xmlrpc.client.dumps writes.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring

# XML 1.0 cannot carry these; a child that prints them must not make the whole response unparseable.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAXINT, MININT = 2**31 - 1, -(2**31)


class BadRequest(Exception):
    """The body is not an XML-RPC method call."""


@dataclass(frozen=True)
class Binary:
    """A base64 parameter (kept apart from strings, as xmlrpc.client's Binary is)."""

    data: bytes

    def __str__(self) -> str:
        return self.data.decode("latin-1")


@dataclass(frozen=True)
class DateTime:
    """A dateTime.iso8601 parameter, unparsed (as xmlrpc.client's DateTime is)."""

    value: str

    def __str__(self) -> str:
        return self.value


# -- requests ----------------------------------------------------------------------------------------------

# Clients that poll send the same few bodies over and over (supervisorctl status, a monitor asking for
# one process): a body seen lately is not parsed again. Only small bodies whose parameters are all
# immutable are kept, so no caller can change what the next one gets; the oldest goes first.
_SEEN: dict[bytes, tuple[str, tuple[Any, ...]]] = {}
_SEEN_MAX, _SEEN_BODY = 256, 1024
_IMMUTABLE = (str, int, float, bool, type(None), Binary, DateTime)


def decode_request(body: bytes) -> tuple[str, tuple[Any, ...]]:
    """(methodName, params) of a methodCall; BadRequest for anything else."""
    seen = _SEEN.get(body)
    if seen is not None:
        return seen
    decoded = _decode(body)
    if len(body) <= _SEEN_BODY and all(type(param) in _IMMUTABLE for param in decoded[1]):
        if len(_SEEN) >= _SEEN_MAX:
            del _SEEN[next(iter(_SEEN))]
        _SEEN[body] = decoded
    return decoded


def _decode(body: bytes) -> tuple[str, tuple[Any, ...]]:
    try:
        root = fromstring(body)
        if root.tag != "methodCall":
            raise ValueError(f"root element is {root.tag}, not methodCall")  # noqa: TRY301 - reported as below
        method = root.findtext("methodName") or ""  # as xmlrpc.client: not stripped
        params = tuple(_value(value) for value in root.iterfind("params/param/value"))
    except RecursionError:
        raise BadRequest("unmarshallable: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - defusedxml's refusals, ParseError, bad values: all "not XML-RPC"
        raise BadRequest(f"unmarshallable: {type(exc).__name__}: {exc}") from None
    return method, params  # an empty name is a call to no method: UNKNOWN_METHOD, not a bad request


def _value(node: Element) -> Any:
    typed = next(iter(node), None)
    if typed is None:
        return node.text or ""  # <value>text</value> is a string
    tag, text = typed.tag, typed.text or ""
    if tag in ("int", "i4", "i8"):
        return int(text)
    if tag == "boolean":
        if text not in ("0", "1"):
            raise TypeError(f"bad boolean value {text!r}")
        return text == "1"
    if tag == "string":
        return text
    if tag == "double":
        return float(text)
    if tag == "array":
        return [_value(v) for v in typed.iterfind("data/value")]
    if tag == "struct":
        return {member.findtext("name") or "": _value(_child(member, "value")) for member in typed.iterfind("member")}
    if tag == "base64":
        return Binary(base64.b64decode(text))
    if tag == "dateTime.iso8601":
        return DateTime(text.strip())
    if tag in ("nil", "{http://ws.apache.org/xmlrpc/namespaces/extensions}nil"):
        return None
    raise ValueError(f"unknown value type {tag}")


def _child(node: Element, tag: str) -> Element:
    found = node.find(tag)
    if found is None:
        raise ValueError(f"{node.tag} without {tag}")
    return found


# -- responses ---------------------------------------------------------------------------------------------

def clean_text(text: str) -> str:
    """Replace characters XML 1.0 cannot represent with U+FFFD."""
    return _INVALID_XML.sub("\ufffd", text)


def encode_response(value: Any) -> bytes:
    """A methodResponse carrying ``value``."""
    out = ["<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n"]
    _encode(value, out)
    out.append("</param>\n</params>\n</methodResponse>\n")
    return "".join(out).encode("utf-8")


def encode_fault(code: int, text: str) -> bytes:
    """A methodResponse carrying a fault."""
    out = ["<?xml version='1.0'?>\n<methodResponse>\n<fault>\n"]
    _encode({"faultCode": int(code), "faultString": clean_text(text)}, out)
    out.append("</fault>\n</methodResponse>\n")
    return "".join(out).encode("utf-8")


def _escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


# The layout of xmlrpc.client.Marshaller, so clients see the bytes they always saw. Dispatch is on the
# exact type, with an isinstance chain for subclasses; getAllProcessInfo of 1000 programs is 17,000
# values, so each one costs a dict lookup and one append.

def _encode(value: Any, out: list[str]) -> None:
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        encoder = _encoder_for(value)
    encoder(value, out)


def _encoder_for(value: Any) -> Any:
    for kind, encoder in _ENCODERS.items():  # bool before int: bool is an int
        if isinstance(value, kind):
            return encoder
    raise TypeError(f"cannot marshal {type(value)} objects")


def _int_text(value: int) -> str:
    if not MININT <= value <= MAXINT:
        raise OverflowError("int exceeds XML-RPC limits")
    return f"<value><int>{value}</int></value>\n"


def _bool(value: bool, out: list[str]) -> None:
    out.append(f"<value><boolean>{int(value)}</boolean></value>\n")


def _int(value: int, out: list[str]) -> None:
    out.append(_int_text(value))


def _str(value: str, out: list[str]) -> None:
    out.append(f"<value><string>{_escape(value)}</string></value>\n")


def _float(value: float, out: list[str]) -> None:
    out.append(f"<value><double>{value!r}</double></value>\n")


def _array(value: list[Any] | tuple[Any, ...], out: list[str]) -> None:
    out.append("<value><array><data>\n")
    for item in value:
        if type(item) is dict:
            # Each struct joined at once: getAllProcessInfo of 1000 programs was 22,000 small strings
            # alive until the end, a peak the daemon's heap kept.
            struct: list[str] = []
            _struct(item, struct)
            out.append("".join(struct))
        else:
            _encode(item, out)
    out.append("</data></array></value>\n")


_MEMBERS: dict[str, str] = {}  # struct key -> its opening text; keys come from the API, a small set


def _member(key: Any) -> str:
    text = _MEMBERS.get(key)
    if text is None:
        if not isinstance(key, str):
            raise TypeError("dictionary key must be string")
        text = f"<member>\n<name>{_escape(key)}</name>\n"
        if len(_MEMBERS) < 1024:
            _MEMBERS[key] = text
    return text


def _struct(value: dict[str, Any], out: list[str]) -> None:
    out.append("<value><struct>\n")
    members = _MEMBERS
    for key, item in value.items():
        # Strings and ints (most members) inline: a getProcessInfo struct is 21 of them, and two calls
        # a member were a tenth of the call's encoding.
        member = members.get(key) or _member(key)
        kind = type(item)
        if kind is str:
            if "&" in item or "<" in item or ">" in item:
                item = _escape(item)
            out.append(f"{member}<value><string>{item}</string></value>\n</member>\n")
        elif kind is int and MININT <= item <= MAXINT:
            out.append(f"{member}<value><int>{item}</int></value>\n</member>\n")
        else:
            out.append(member)
            _encode(item, out)
            out.append("</member>\n")
    out.append("</struct></value>\n")


_ENCODERS: dict[type, Any] = {bool: _bool, int: _int, str: _str, float: _float, list: _array, tuple: _array,
                              dict: _struct}
