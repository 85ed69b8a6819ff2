#!/usr/bin/env python3
"""A tally client in Python with nothing but grpcio and the proto (docs/protocol.md).

One call per write: an Add with a request_id, sent to any node (a node that does not lead the
key's shard forwards it). A retry after a timeout reuses the request_id, so it never counts twice.
Reads ask any node for STALE values at or after the last write's index (read your own writes).

Needs python3-grpcio and python3-grpc-tools (Debian); the stubs are generated from
proto/tally.proto into a temporary directory at start. Exits 1 if a count is not exact.

    python3 examples/python/counter.py --endpoint 127.0.0.1:7001 [--token TOKEN]
"""
import argparse
import importlib
import os
import sys
import tempfile
import time
import uuid

import grpc
from grpc_tools import protoc

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
# Unknown answers (docs/errors.md): the write may or may not have applied; retry with the same id.
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}


def load_stubs():
    out = tempfile.mkdtemp(prefix="tally-py-")
    if protoc.main(["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}", os.path.join(PROTO_DIR, "tally.proto")]) != 0:
        sys.exit("protoc failed on proto/tally.proto")
    sys.path.insert(0, out)
    return importlib.import_module("tally_pb2"), importlib.import_module("tally_pb2_grpc")


class Counter:
    def __init__(self, endpoint, token):
        self.pb, stubs = load_stubs()
        self.stub = stubs.CounterServiceStub(grpc.insecure_channel(endpoint))
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self.last_index = 0  # the newest log index this client has seen applied

    def add(self, key, delta, request_id, timeout=5.0):
        """One attempt: Add with a request_id; any node accepts it."""
        request = self.pb.AddRequest(header=self.pb.RequestHeader(request_id=request_id), key=key.encode(), delta=delta)
        reply = self.stub.Add(request, timeout=timeout, metadata=self.metadata)
        self.last_index = max(self.last_index, reply.fence.index)
        return reply

    def add_exactly_once(self, key, delta, request_id=None, attempts=10):
        """Retries an unknown outcome with the SAME request_id: applied once, whatever happened."""
        request_id = request_id or str(uuid.uuid4())
        for attempt in range(attempts):
            try:
                return self.add(key, delta, request_id)
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def get(self, key):
        """The value at or after every write this client made, from whichever node it talks to."""
        request = self.pb.GetRequest(key=key.encode(), consistency=self.pb.STALE, min_index=self.last_index)
        return self.stub.Get(request, timeout=5.0, metadata=self.metadata).value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="127.0.0.1:7001", help="any node's client address")
    parser.add_argument("--token", default=os.environ.get("TALLY_TOKEN"), help="bearer token, if the cluster has auth")
    parser.add_argument("--key", default=f"py-example:{uuid.uuid4()}")
    args = parser.parse_args()
    counter = Counter(args.endpoint, args.token)
    problems = []

    def expect(what, got, want):
        print(f"{what}: {got}" + ("" if got == want else f"  (expected {want})"))
        if got != want:
            problems.append(what)

    start = counter.get(args.key)
    first = counter.add_exactly_once(args.key, 5)
    expect("after +5", counter.get(args.key), start + 5)

    # The same request sent twice (a retry whose first answer was lost): the second is answered
    # with the first's result and changes nothing.
    request_id = str(uuid.uuid4())
    once = counter.add(args.key, 3, request_id)
    again = counter.add(args.key, 3, request_id)
    expect("retry returns the first result", (again.value, again.version), (once.value, once.version))
    expect("after +3 sent twice", counter.get(args.key), start + 8)

    # A timeout: the first attempt gives up almost at once (it may or may not have reached the
    # cluster), then the write is retried with the same request_id until it is answered.
    request_id = str(uuid.uuid4())
    try:
        counter.add(args.key, 2, request_id, timeout=0.001)
        print("the 1 ms attempt was answered anyway")
    except grpc.RpcError as error:
        print(f"the 1 ms attempt failed: {error.code().name}")
    counter.add_exactly_once(args.key, 2, request_id)
    counter.add_exactly_once(args.key, 2, request_id)
    expect("after +2 with a timed-out attempt and two retries", counter.get(args.key), start + 10)

    # A reused request_id with other operations is refused, not answered with the old result.
    try:
        counter.add(args.key, 100, request_id)
        problems.append("a reused request_id with another delta was accepted")
    except grpc.RpcError as error:
        expect("reused request_id, other delta", error.code(), grpc.StatusCode.INVALID_ARGUMENT)
    expect("final", counter.get(args.key), start + 10)
    print(f"first add answered value {first.value} at index {first.fence.index}")
    if problems:
        print("MISMATCH: " + ", ".join(problems), file=sys.stderr)
        return 1
    print("ok: every logical increment counted exactly once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
