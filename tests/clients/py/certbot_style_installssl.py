"""Replays the request certbot-dns-cpanel makes to install a certificate (cpanel-wire.md §10):
GET /json-api/cpanel with the API 2 selectors and the certificate, its private key and the CA
bundle in the query string, `Authorization: cpanel USER:TOKEN`, TLS verified, no redirects.
Made with `requests` from the client virtual environment; the plugin itself is not installed.

Usage: certbot_style_installssl.py DOMAIN CRT_FILE KEY_FILE CABUNDLE_FILE
Connection settings: CPGATE_HOST, CPGATE_PORT, CPGATE_USER, CPGATE_TOKEN, CPGATE_CA.

Prints one JSON line: {"status": HTTP_STATUS, "result": RESPONSE_JSON}.
"""

import json
import os
import sys

import requests


def main(argv):
    domain, crt, key, cabundle = argv
    read = lambda path: open(path, encoding="ascii").read()
    url = "https://{}:{}/json-api/cpanel".format(os.environ["CPGATE_HOST"], os.environ["CPGATE_PORT"])
    response = requests.get(
        url,
        params={
            "cpanel_jsonapi_user": os.environ["CPGATE_USER"],
            "cpanel_jsonapi_apiversion": "2",
            "cpanel_jsonapi_module": "SSL",
            "cpanel_jsonapi_func": "installssl",
            "domain": domain,
            "crt": read(crt),
            "key": read(key),
            "cabundle": read(cabundle),
        },
        headers={"Authorization": "cpanel {}:{}".format(os.environ["CPGATE_USER"], os.environ["CPGATE_TOKEN"])},
        verify=os.environ["CPGATE_CA"],
        allow_redirects=False,
        timeout=30,
    )
    print(json.dumps({"status": response.status_code, "result": response.json()}))


if __name__ == "__main__":
    main(sys.argv[1:])
