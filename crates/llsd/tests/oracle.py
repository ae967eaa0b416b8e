#!/usr/bin/env python3
"""Cross-check for opensim-llsd against the python `llsd` package (tests/oracle.rs drives it).

Input, one case per line, tab-separated:
    name, canonical JSON, canonical JSON after XML cleaning, xml base64, binary base64,
    notation base64
where the documents are what the Rust crate wrote. For each case this script
  1. parses each document with python `llsd` and compares it with the canonical form;
  2. builds the value from the canonical form and serializes it with python `llsd` in each
     format, then prints the bytes and the canonical form python itself parses them back to,
     for the Rust side to compare its own parse against.

Output lines, tab-separated:
    OK   name fmt
    FAIL name fmt message
    PY   name fmt base64-bytes canonical-json
Exit status 3 when the `llsd` module is missing (the Rust test then skips).

The canonical form is JSON with tagged values: ["undef"], ["bool", b], ["int", n],
["real", "<16 hex digits of the IEEE bits>" or "nan"], ["str", s], ["uri", s], ["uuid", s],
["date", microseconds since the epoch], ["bin", hex], ["array", [...]], ["map", [[k, v], ...]].
"""

import base64
import datetime
import json
import math
import struct
import sys
import uuid
import warnings

warnings.simplefilter("ignore")

try:
    import llsd
except ImportError:
    print("python module llsd is not installed", file=sys.stderr)
    sys.exit(3)

EPOCH = datetime.datetime(1970, 1, 1)
MICRO = datetime.timedelta(microseconds=1)


def canon(v):
    """The tagged canonical form of a value python llsd parsed."""
    if v is None:
        return ["undef"]
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        return ["int", v]
    if isinstance(v, float):
        return ["real", "nan" if math.isnan(v) else struct.pack(">d", v).hex()]
    if isinstance(v, llsd.uri):
        return ["uri", str(v)]
    if isinstance(v, str):
        return ["str", v]
    if isinstance(v, uuid.UUID):
        return ["uuid", str(v)]
    if isinstance(v, datetime.datetime):
        return ["date", (v - EPOCH) // MICRO]
    if isinstance(v, datetime.date):
        return ["date", (datetime.datetime.combine(v, datetime.time()) - EPOCH) // MICRO]
    if isinstance(v, (bytes, bytearray)):
        return ["bin", bytes(v).hex()]
    if isinstance(v, list):
        return ["array", [canon(x) for x in v]]
    if isinstance(v, dict):
        return ["map", [[k, canon(x)] for k, x in v.items()]]
    raise TypeError("unexpected python value %r" % (v,))


def build(c):
    """The python value of a canonical form."""
    tag = c[0]
    if tag == "undef":
        return None
    if tag in ("bool", "int", "str"):
        return c[1]
    if tag == "real":
        return float("nan") if c[1] == "nan" else struct.unpack(">d", bytes.fromhex(c[1]))[0]
    if tag == "uri":
        return llsd.uri(c[1])
    if tag == "uuid":
        return uuid.UUID(c[1])
    if tag == "date":
        return EPOCH + datetime.timedelta(microseconds=c[1])
    if tag == "bin":
        return bytes.fromhex(c[1])
    if tag == "array":
        return [build(x) for x in c[1]]
    if tag == "map":
        return {k: build(x) for k, x in c[1]}
    raise ValueError("unknown tag %r" % (tag,))


def dumps(c):
    return json.dumps(c, ensure_ascii=False, separators=(",", ":"))


PARSERS = {"xml": llsd.parse_xml, "binary": llsd.parse_binary, "notation": llsd.parse_notation}
FORMATTERS = {"xml": llsd.format_xml, "binary": llsd.format_binary, "notation": llsd.format_notation}


def main():
    out = sys.stdout
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        name, canon_text, canon_xml_text, xml_b64, bin_b64, not_b64 = line.split("\t")
        expected = json.loads(canon_text)
        expected_xml = json.loads(canon_xml_text)
        docs = {"xml": xml_b64, "binary": bin_b64, "notation": not_b64}
        for fmt in ("xml", "binary", "notation"):
            data = base64.b64decode(docs[fmt])
            want = expected_xml if fmt == "xml" else expected
            try:
                got = canon(PARSERS[fmt](data))
            except Exception as e:  # any failure is a finding
                out.write("FAIL\t%s\t%s\tpython cannot parse it: %r\n" % (name, fmt, e))
                continue
            if got == want:
                out.write("OK\t%s\t%s\n" % (name, fmt))
            else:
                out.write("FAIL\t%s\t%s\tpython reads %s, expected %s\n"
                          % (name, fmt, dumps(got), dumps(want)))
        value = build(expected)
        for fmt in ("xml", "binary", "notation"):
            try:
                data = FORMATTERS[fmt](value)
                back = dumps(canon(PARSERS[fmt](data)))
            except Exception as e:
                out.write("FAIL\t%s\tpy-%s\tpython cannot round-trip its own output: %r\n" % (name, fmt, e))
                continue
            out.write("PY\t%s\t%s\t%s\t%s\n" % (name, fmt, base64.b64encode(data).decode(), back))
    out.flush()


if __name__ == "__main__":
    main()
