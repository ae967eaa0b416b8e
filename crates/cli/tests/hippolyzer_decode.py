#!/usr/bin/env python3
"""Decode LLUDP datagram files with Hippolyzer, the independent Python implementation.

Prints one JSON object per file, tagging each value so that the Rust test can compare it
with `osn decode --json`: {"u": uuid}, {"s": text}, {"b": hex bytes}, numbers, booleans and
lists of numbers. With --bench N it instead times N passes over the files and prints
{"packets": n, "seconds": s, "ns_per_packet": x}.
"""
import json
import sys
import time
import uuid

from hippolyzer.lib.base.message.udpdeserializer import UDPMessageDeserializer


def tag(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, uuid.UUID):
        return {"u": str(v)}
    if isinstance(v, str):
        return {"s": v}
    if isinstance(v, (bytes, bytearray)):
        return {"b": bytes(v).hex()}
    if hasattr(v, "data") and callable(v.data):
        return [float(x) for x in v.data()]
    if isinstance(v, (tuple, list)):
        return [tag(x) for x in v]
    try:
        return [float(x) for x in v]
    except TypeError:
        return {"s": str(v)}


def decode(path, deserializer):
    with open(path, "rb") as f:
        data = f.read()
    msg = deserializer.deserialize(data)
    blocks = {}
    for name, block_list in msg.blocks.items():
        blocks[name] = [
            {k: tag(v) for k, v in block.items()} for block in block_list
        ]
    return {
        "file": path,
        "message": msg.name,
        "sequence": msg.packet_id,
        "reliable": bool(msg.reliable),
        "acks": sorted(msg.acks),
        "blocks": blocks,
    }


def main():
    args = sys.argv[1:]
    deserializer = UDPMessageDeserializer()
    if args and args[0] == "--bench":
        rounds = int(args[1])
        files = args[2:]
        datas = [open(p, "rb").read() for p in files]
        start = time.perf_counter()
        for _ in range(rounds):
            for d in datas:
                deserializer.deserialize(d)
        secs = time.perf_counter() - start
        n = rounds * len(datas)
        print(json.dumps({"packets": n, "seconds": secs, "ns_per_packet": secs / n * 1e9}))
        return
    for path in args:
        try:
            print(json.dumps(decode(path, deserializer)))
        except Exception as e:  # noqa: BLE001 - reported to the comparing test
            print(json.dumps({"file": path, "error": repr(e)}))


if __name__ == "__main__":
    main()
