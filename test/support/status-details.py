#!/usr/bin/env python3
"""A client in another language reading tally's standard error trailer (docs/errors-wire.md).

Usage: status-details.py ADDRESS METHOD_PATH REQUEST_HEX

Makes one unary call with grpcio (the request bytes as given, hex), expects it to fail, and reads
google.rpc.Status from the trailer grpc-status-details-bin the way grpcio-status's
rpc_status.from_call does (which also refuses a Status whose code or message differ from the
call's). The google.rpc messages are described here by hand with descriptor_pb2 and decoded by
python3-protobuf, so nothing of tally's TypeScript codec is involved. Prints one JSON object.
Test traffic: ADDRESS is a loopback address of a test cluster.
"""
import json
import sys

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, message_factory

STATUS_DETAILS_KEY = "grpc-status-details-bin"
FIELD = descriptor_pb2.FieldDescriptorProto


def field(name, number, kind, label=FIELD.LABEL_OPTIONAL, type_name=None):
    proto = FIELD(name=name, number=number, type=kind, label=label)
    if type_name is not None:
        proto.type_name = type_name
    return proto


def google_rpc_pool():
    """google/rpc/status.proto and the two messages of error_details.proto tally sends."""
    pool = descriptor_pool.DescriptorPool()
    for well_known in (any_pb2, duration_pb2):
        file_proto = descriptor_pb2.FileDescriptorProto()
        well_known.DESCRIPTOR.CopyToProto(file_proto)
        pool.Add(file_proto)

    status = descriptor_pb2.FileDescriptorProto(
        name="google/rpc/status.proto", package="google.rpc", syntax="proto3", dependency=["google/protobuf/any.proto"]
    )
    status.message_type.add(name="Status").field.extend([
        field("code", 1, FIELD.TYPE_INT32),
        field("message", 2, FIELD.TYPE_STRING),
        field("details", 3, FIELD.TYPE_MESSAGE, FIELD.LABEL_REPEATED, ".google.protobuf.Any"),
    ])
    pool.Add(status)

    details = descriptor_pb2.FileDescriptorProto(
        name="google/rpc/error_details.proto", package="google.rpc", syntax="proto3", dependency=["google/protobuf/duration.proto"]
    )
    details.message_type.add(name="RetryInfo").field.append(
        field("retry_delay", 1, FIELD.TYPE_MESSAGE, type_name=".google.protobuf.Duration")
    )
    error_info = details.message_type.add(name="ErrorInfo")
    entry = error_info.nested_type.add(name="MetadataEntry")
    entry.options.map_entry = True
    entry.field.extend([field("key", 1, FIELD.TYPE_STRING), field("value", 2, FIELD.TYPE_STRING)])
    error_info.field.extend([
        field("reason", 1, FIELD.TYPE_STRING),
        field("domain", 2, FIELD.TYPE_STRING),
        field("metadata", 3, FIELD.TYPE_MESSAGE, FIELD.LABEL_REPEATED, ".google.rpc.ErrorInfo.MetadataEntry"),
    ])
    pool.Add(details)
    return pool


def message_class(pool, name):
    descriptor = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def main():
    address, method, request_hex = sys.argv[1:4]
    pool = google_rpc_pool()
    Status = message_class(pool, "google.rpc.Status")
    ErrorInfo = message_class(pool, "google.rpc.ErrorInfo")
    RetryInfo = message_class(pool, "google.rpc.RetryInfo")

    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method)  # no serializers: request and response are bytes
        try:
            call(bytes.fromhex(request_hex), timeout=10)
            print(json.dumps({"error": "the call succeeded"}))
            return 1
        except grpc.RpcError as failure:
            code, details, trailers = failure.code(), failure.details(), failure.trailing_metadata() or ()

    raw = [value for key, value in trailers if key == STATUS_DETAILS_KEY]
    out = {"grpc_code": code.value[0], "grpc_details": details, "status_details_trailers": len(raw)}
    if raw:
        status = Status.FromString(raw[0])
        # rpc_status.from_call's checks: the Status must describe this very call.
        out["matches_call"] = status.code == code.value[0] and status.message == details
        decoded = []
        for detail in status.details:
            entry = {"type_url": detail.type_url}
            if detail.type_url == "type.googleapis.com/google.rpc.ErrorInfo":
                info = ErrorInfo.FromString(detail.value)
                entry.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
            elif detail.type_url == "type.googleapis.com/google.rpc.RetryInfo":
                delay = RetryInfo.FromString(detail.value).retry_delay
                entry.update(retry_delay_seconds=delay.seconds, retry_delay_nanos=delay.nanos)
            decoded.append(entry)
        out["status"] = {"code": status.code, "message": status.message, "details": decoded}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
