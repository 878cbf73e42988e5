"""The XML-RPC codec against xmlrpc.client, the encoding every Supervisor client was written for."""

from __future__ import annotations

import datetime
import xmlrpc.client

import pytest

from procward.rpc import codec

VALUES = [0, -(2**31), 2**31 - 1, True, False, "", "a<&>b \u2028 ünï", 1.5, -0.0, [], {},
          [1, "x", {"k": [True, 2.25, {"deep": []}]}], {"name": "p", "pid": 42, "statename": "RUNNING"}]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_responses_are_byte_identical_to_xmlrpc_client(value) -> None:
    assert codec.encode_response(value) == xmlrpc.client.dumps((value,), methodresponse=True).encode()


def test_faults_are_byte_identical_and_cleaned() -> None:
    expected = xmlrpc.client.dumps(xmlrpc.client.Fault(10, "BAD_NAME: a<b\ufffd"), methodresponse=True).encode()
    assert codec.encode_fault(10, "BAD_NAME: a<b\x00") == expected


def test_out_of_range_ints_and_unknown_types_are_refused_like_xmlrpc_client() -> None:
    with pytest.raises(OverflowError):
        codec.encode_response(2**31)
    with pytest.raises(TypeError):
        codec.encode_response(object())
    with pytest.raises(TypeError):
        codec.encode_response({1: "non-string key"})


def test_every_request_type_decodes_as_xmlrpc_client_sends_it() -> None:
    params = (7, "s", True, [1, [2]], {"a": None, "b": {"c": 1.25}}, xmlrpc.client.Binary(b"\x00\xff"),
              xmlrpc.client.DateTime(datetime.datetime(2026, 11, 23, 9, 0, 0)))
    body = xmlrpc.client.dumps(params, "supervisor.anything", allow_none=True).encode()
    method, decoded = codec.decode_request(body)
    assert method == "supervisor.anything"
    assert decoded[:5] == params[:5]
    assert decoded[5] == codec.Binary(b"\x00\xff")
    assert str(decoded[5]) == "\x00\xff"
    assert str(decoded[6]) == "20261123T09:00:00"
    assert codec.decode_request(b"<methodCall><methodName>m</methodName><params><param><value>bare</value>"
                                b"</param></params></methodCall>") == ("m", ("bare",))


@pytest.mark.parametrize("body", [b"<methodCall/>", b"<methodCall><methodName></methodName></methodCall>",
                                  b"<methodCall><methodName/><params></params></methodCall>"])
def test_a_call_without_a_method_name_decodes_to_an_empty_name(body: bytes) -> None:
    """A well-formed call that names no method is the registry's to answer (UNKNOWN_METHOD), not a 400."""
    assert codec.decode_request(body) == ("", ())


@pytest.mark.parametrize("body", [
    b"", b"not xml", b"<x/>",
    b"<methodCall><methodName>m</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>",
    b"<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>",
    b"<methodCall><methodName>m</methodName><params><param><value><base64>abc</base64></value></param></params></methodCall>",
    b"<methodCall><methodName>m</methodName><params><param><value><struct><member><name>a</name></member>"
    b"</struct></value></param></params></methodCall>",
    b"<methodCall><methodName>m</methodName><params><param><value><bogus/></value></param></params></methodCall>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><methodCall><methodName>&b;'
    b"</methodName></methodCall>",
    b"<methodCall><methodName>m</methodName><params><param>" + b"<value><array><data>" * 5000 + b"</param></params></methodCall>",
    b"<methodCall><methodName>m</methodName><params><param><value>" + b"<array><data><value>" * 3000 + b"1"
    + b"</value></data></array>" * 3000 + b"</value></param></params></methodCall>",
], ids=lambda b: b[:60].decode("latin-1"))
def test_malformed_or_hostile_requests_are_bad_requests(body: bytes) -> None:
    with pytest.raises(codec.BadRequest):
        codec.decode_request(body)


def test_a_repeated_body_is_answered_from_the_cache_but_never_shares_mutable_params() -> None:
    """Polling clients send the same bodies: the second decode is the first's result; a body with an
    array parameter is parsed again each time, so one caller's change never reaches the next."""
    simple = xmlrpc.client.dumps(("p0001",), "supervisor.getProcessInfo").encode()
    assert codec.decode_request(simple) is codec.decode_request(simple)
    with_list = xmlrpc.client.dumps((["a", "b"],), "supervisor.sendRemoteCommEvent").encode()
    first = codec.decode_request(with_list)
    first[1][0].append("changed")
    assert codec.decode_request(with_list)[1][0] == ["a", "b"]
    for i in range(codec._SEEN_MAX + 10):  # bounded: the oldest bodies go first
        codec.decode_request(xmlrpc.client.dumps((f"p{i}",), "supervisor.getProcessInfo").encode())
    assert len(codec._SEEN) == codec._SEEN_MAX
    assert simple not in codec._SEEN
