"""Drives the `aiocpanel` client (PyPI, unchanged) for tests/clients.

Usage: aiocpanel_call.py METHOD [ARG ...]

METHOD is one of the client's public methods: fetch_certificate DOMAIN, start_autossl_check,
list_dynamic_dns, create_dynamic_dns DOMAIN DESCRIPTION.
Connection settings come from the environment: CPGATE_HOST, CPGATE_PORT, CPGATE_USER,
CPGATE_TOKEN, and CPGATE_CA: the CA file the aiohttp session verifies cpgate's certificate with
(`system` for the system roots only; `default` for aiohttp's default context, which reads
SSL_CERT_FILE).

Prints one JSON line: {"result": ...} or {"exception": CLASS, "message": TEXT}.
"""

import asyncio
import dataclasses
import json
import os
import ssl
import sys

import aiohttp
from aiocpanel import CpanelClient


def plain(value):
    if dataclasses.is_dataclass(value):
        out = dataclasses.asdict(value)
        if hasattr(value, "fullchain"):
            out["fullchain"] = value.fullchain
        return out
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


async def main(argv):
    method, *args = argv
    ca = os.environ["CPGATE_CA"]
    if ca == "default":
        connector = aiohttp.TCPConnector()
    elif ca == "system":
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context())
    else:
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca))
    async with aiohttp.ClientSession(connector=connector) as session:
        client = CpanelClient(
            session,
            os.environ["CPGATE_HOST"],
            os.environ["CPGATE_USER"],
            os.environ["CPGATE_TOKEN"],
            port=int(os.environ["CPGATE_PORT"]),
        )
        try:
            result = await getattr(client, method)(*args)
        except Exception as error:  # the client's own error, reported to the test
            print(json.dumps({"exception": type(error).__name__, "message": str(error)}))
            return
    print(json.dumps({"result": plain(result)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
