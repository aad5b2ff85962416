#!/usr/bin/env python3
"""Independent check of warrant's COSE_Sign1 objects with Python's cbor2 and cryptography.

Usage: cose_signatures.py TRUST_JSON GRANT WARRANT STATUS_LIST NEXT_STATUS_LIST

Rebuilds each Sig_structure (RFC 9052 section 4.4) itself, verifies the ES256 signatures
(the grant and status lists with the authority key from the trust file, the warrant with the
key in the grant's cnf claim), recomputes the RFC 9679 key thumbprints that serve as kids,
checks that the next status list's prev is the SHA-256 of the first one's Sig_structure
(FORMAT.md section 6), reads the status list as a generic Token Status List consumer would
(draft-ietf-oauth-status-list: typ, sub, iat, exp, ttl, status_list with zlib, the grant's
status claim), and checks that a one-byte change is refused. Prints one line per check and a closing
'N passed, N failed' line; exits non-zero on any failure.
"""
import hashlib
import json
import sys
import zlib

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

results = []

# The Token Status List's own media type (draft-ietf-oauth-status-list).
STATUS_LIST_TYP = "application/statuslist+cwt"


def check(name, fn):
    try:
        fn()
        results.append(True)
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
        results.append(False)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def parse(data):
    obj = cbor2.loads(data)
    assert isinstance(obj, cbor2.CBORTag) and obj.tag == 18, "not a tagged COSE_Sign1"
    protected, unprotected, payload, signature = obj.value
    header = cbor2.loads(protected)
    assert header[1] == -7, f"alg is {header[1]}, not ES256"
    assert unprotected == {}, "unprotected header is not empty"
    return protected, header, payload, signature


def public_key(x, y):
    return ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
    ).public_key()


def thumbprint(x, y):
    # RFC 9679: SHA-256 of the deterministic encoding of the required COSE_Key parameters.
    return hashlib.sha256(cbor2.dumps({1: 2, -1: 1, -2: x, -3: y}, canonical=True)).digest()


def sig_structure(protected, payload):
    return cbor2.dumps(["Signature1", protected, b"", payload])


def verify(key, protected, payload, signature):
    tbs = sig_structure(protected, payload)
    der = utils.encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))


def main():
    trust_path, grant_path, warrant_path, status_path, next_status_path = sys.argv[1:6]
    trust = json.load(open(trust_path))
    authority = {
        bytes.fromhex(k["kid"]): (bytes.fromhex(k["x"]), bytes.fromhex(k["y"])) for k in trust["keys"]
    }
    grant_bytes = open(grant_path, "rb").read()
    warrant_bytes = open(warrant_path, "rb").read()
    status_bytes = open(status_path, "rb").read()
    next_status_bytes = open(next_status_path, "rb").read()

    def authority_signed(data, typ):
        protected, header, payload, signature = parse(data)
        assert header[16] == typ, f"typ {header[16]!r}"
        x, y = authority[header[4]]
        assert thumbprint(x, y) == header[4], "kid is not the RFC 9679 thumbprint"
        verify(public_key(x, y), protected, payload, signature)

    check("grant signed by the authority", lambda: authority_signed(grant_bytes, "application/warrant-grant+cwt"))
    check("status list signed by the authority",
          lambda: authority_signed(status_bytes, STATUS_LIST_TYP))

    def chained_by_signed_content():
        authority_signed(next_status_bytes, STATUS_LIST_TYP)
        protected, _, payload, _ = parse(status_bytes)
        first, second = cbor2.loads(payload), cbor2.loads(parse(next_status_bytes)[2])
        assert second["seq"] == first["seq"] + 1, f"sequences {first['seq']}, {second['seq']}"
        expected = hashlib.sha256(sig_structure(protected, payload)).digest()
        assert second["prev"] == expected, f"prev {second['prev'].hex()}, expected {expected.hex()}"

    check("next status list's prev is the SHA-256 of the first one's Sig_structure", chained_by_signed_content)

    def read_as_token_status_list():
        # What a consumer that knows only the draft does: the grant's status claim (65535)
        # names the list's URI and index; the list's sub is that URI; its 65533 claim holds
        # bits and a zlib-compressed byte array, status i at bit i % 8 of byte i // 8.
        reference = cbor2.loads(parse(grant_bytes)[2])[65535]["status_list"]
        claims = cbor2.loads(parse(status_bytes)[2])
        assert claims[2] == reference["uri"], f"sub {claims[2]!r}, grant names {reference['uri']!r}"
        assert claims[6] < claims[4], "iat not before exp"
        assert 0 < claims[65534] <= claims[4] - claims[6], f"ttl {claims[65534]}"
        status_list = claims[65533]
        assert status_list["bits"] == 1, f"bits {status_list['bits']}"
        statuses = zlib.decompress(status_list["lst"])
        index = reference["idx"]
        assert (statuses[index // 8] >> (index % 8)) & 1 == 0, f"the grant (index {index}) reads as revoked"

    check("status list read as a generic Token Status List (draft-ietf-oauth-status-list)", read_as_token_status_list)

    def warrant_signed(data):
        protected, header, payload, signature = parse(data)
        assert header[16] == "application/warrant+cwt"
        claims = cbor2.loads(payload)
        embedded = claims["grant"]
        assert embedded == grant_bytes, "the embedded grant is not the authority's grant"
        cose_key = cbor2.loads(parse(embedded)[2])[8][1]
        x, y = cose_key[-2], cose_key[-3]
        assert thumbprint(x, y) == header[4], "warrant kid is not the thumbprint of the grant's cnf key"
        verify(public_key(x, y), protected, payload, signature)

    check("warrant signed by the grant's cnf key", lambda: warrant_signed(warrant_bytes))

    def tampered_is_refused():
        data = bytearray(warrant_bytes)
        data[len(data) // 2] ^= 0x01
        try:
            warrant_signed(bytes(data))
        except (InvalidSignature, AssertionError, ValueError, KeyError, cbor2.CBORDecodeError):
            return
        raise AssertionError("a one-byte change verified")

    check("one-byte change refused", tampered_is_refused)
    passed = sum(results)
    print(f"interop: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
