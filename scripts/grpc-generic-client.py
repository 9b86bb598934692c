#!/usr/bin/env python3
"""A generic gRPC client with no .proto files at hand: it learns geowallet's
API from the node's reflection service, then calls it.

    grpc-generic-client.py ENDPOINT TLS_DIR ROLE PLAYER CURRENCY

ENDPOINT is a node's client API (host:port); TLS_DIR holds ca.pem and
ROLE.pem/ROLE.key (what `geowallet dev` writes to DIR/tls). Prints one JSON
object: the services reflection lists, the health of geowallet.v1.Wallet,
and the Balance of PLAYER's CURRENCY account (as the server answered it).
Needs grpcio, grpcio-reflection and protobuf from PyPI (scripts/setup.sh
installs them into a virtualenv).
"""
import json
import sys

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def call(channel, pool, service, method, request):
    """Calls service/method with `request` (a dict), answers a dict."""
    m = pool.FindServiceByName(service).methods_by_name[method]
    request_type = message_factory.GetMessageClass(m.input_type)
    response_type = message_factory.GetMessageClass(m.output_type)
    stub = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=lambda msg: msg.SerializeToString(),
        response_deserializer=response_type.FromString,
    )
    answer = stub(json_format.ParseDict(request, request_type()), timeout=10)
    return json_format.MessageToDict(answer, preserving_proto_field_name=True)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    endpoint, tls_dir, role, player, currency = sys.argv[1:]

    def read(name):
        with open(f"{tls_dir}/{name}", "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"),
        private_key=read(f"{role}.key"),
        certificate_chain=read(f"{role}.pem"),
    )
    with grpc.secure_channel(endpoint, credentials) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(db.get_services())
        pool = DescriptorPool(db)
        health = call(
            channel, pool, "grpc.health.v1.Health", "Check", {"service": "geowallet.v1.Wallet"}
        )
        balance = call(
            channel,
            pool,
            "geowallet.v1.Wallet",
            "Balance",
            {"account": {"player": int(player), "currency": currency}},
        )
    print(json.dumps({"services": services, "health": health, "balance": balance}))


if __name__ == "__main__":
    main()
