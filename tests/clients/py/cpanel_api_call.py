"""Drives the `cpanel-api` client (PyPI, unchanged) for tests/clients.

Usage: cpanel_api_call.py AUTH_TYPE API MODULE FUNCTION [NAME=VALUE ...]

AUTH_TYPE is the client's `auth_type` (`utoken`: `Authorization: cpanel USER:TOKEN`;
`password`: HTTP Basic). API is the client's attribute: `uapi` or `cpanel2` (API 2).
Connection settings come from the environment: CPGATE_HOST, CPGATE_PORT, CPGATE_USER,
CPGATE_TOKEN, and CPGATE_CA (the CA file to verify cpgate's certificate with; `system` for the
system roots, empty for the client's default, no verification).

Prints one JSON line: {"result": ...} with the client's return value, or
{"exception": CLASS, "message": TEXT} when the client raised.
"""

import json
import os
import sys

from cpanel_api import CPanelApi


def verify_setting():
    ca = os.environ.get("CPGATE_CA", "")
    if ca == "":
        return {}
    if ca == "system":
        return {"verify": True}
    return {"verify": ca}


def main(argv):
    auth_type, api, module, function, *pairs = argv
    params = dict(pair.split("=", 1) for pair in pairs)
    client = CPanelApi(
        os.environ["CPGATE_HOST"],
        os.environ["CPGATE_USER"],
        os.environ["CPGATE_TOKEN"],
        port=int(os.environ["CPGATE_PORT"]),
        auth_type=auth_type,
        **verify_setting(),
    )
    call = getattr(getattr(getattr(client, api), module), function)
    try:
        result = call(**params)
    except Exception as error:  # the client's own error, reported to the test
        print(json.dumps({"exception": type(error).__name__, "message": str(error)}))
        return
    print(json.dumps({"result": result}))


if __name__ == "__main__":
    main(sys.argv[1:])
