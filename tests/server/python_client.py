#!/usr/bin/python3
"""A small Probity client on Debian's python3-grpcio: lists the server's services through
gRPC server reflection and runs one warranted Search.

Stubs for the request and response messages come from `protoc --python_out` (run at build
time); the calls use grpcio's generic channel methods, so grpc_tools is not needed. Prints one
JSON object: {"services": [...], "health": 1, "results": [[ids...], ...], "entry_index": N,
"coverage": [answered, total]}.
"""
import argparse
import json
import struct
import sys

import grpc


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data, pos):
    result, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data):
    """Yields (field number, wire type, value) of a serialized protobuf message."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def list_services(channel):
    # grpc.reflection.v1alpha.ServerReflectionRequest{list_services: ""} is field 7 (string).
    request = b"\x3a" + varint(0)
    call = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw)
    names = []
    for response in call(iter([request]), timeout=10):
        for number, _, value in fields(response):
            if number == 6:  # list_services_response
                for service_number, _, service in fields(value):
                    if service_number == 1:  # ServiceResponse
                        for name_number, _, name in fields(service):
                            if name_number == 1:
                                names.append(name.decode())
    return sorted(names)


def health_status(channel):
    # grpc.health.v1.HealthCheckRequest{service: ""} is empty; the response's field 1 is the
    # ServingStatus enum (1 = SERVING, 2 = NOT_SERVING).
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda raw: raw,
                                response_deserializer=lambda raw: raw)
    for number, _, value in fields(check(b"", timeout=10)):
        if number == 1:
            return value
    return 0


def read_fvecs(path):
    with open(path, "rb") as f:
        data = f.read()
    rows, pos = [], 0
    while pos < len(data):
        (dim,) = struct.unpack_from("<i", data, pos)
        rows.append(list(struct.unpack_from("<%df" % dim, data, pos + 4)))
        pos += 4 + 4 * dim
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True)
    parser.add_argument("--pb2-dir", required=True, help="where search_pb2.py was generated")
    parser.add_argument("--warrant", required=True, help="file holding the warrant token")
    parser.add_argument("--embedding", required=True, help=".fvecs file of query vectors")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nprobe", type=int, default=0)
    args = parser.parse_args()

    sys.path.insert(0, args.pb2_dir)
    from probity.v1 import search_pb2  # noqa: E402  (generated at build time)

    channel = grpc.insecure_channel(args.server)
    services = list_services(channel)
    health = health_status(channel)

    request = search_pb2.SearchRequest(collection=args.collection, k=args.k, nprobe=args.nprobe,
                                       justification="python client test")
    for row in read_fvecs(args.embedding):
        request.queries.add(values=row)
    search = channel.unary_unary("/probity.v1.Search/Search",
                                 request_serializer=search_pb2.SearchRequest.SerializeToString,
                                 response_deserializer=search_pb2.SearchResponse.FromString)
    with open(args.warrant) as f:
        token = f.read().strip()
    response = search(request, metadata=[("authorization", "Bearer " + token)], timeout=30)
    print(json.dumps({
        "services": services,
        "health": health,
        "results": [[c.id for c in result.candidates] for result in response.results],
        "entry_index": response.receipt.entry_index,
        "coverage": [response.coverage.shards_answered, response.coverage.shards_total],
    }))


if __name__ == "__main__":
    main()
