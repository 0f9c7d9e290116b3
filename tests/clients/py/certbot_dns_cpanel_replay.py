"""Replays the requests of certbot-dns-cpanel 0.4.0 (its `_CPanelClient`, stdlib only), for
tests/clients. The plugin itself is not installed: it needs a certbot release with zope
interfaces. Every request is what the plugin sends: GET /json-api/cpanel with the API 2
selectors (and, for installssl, the certificate, private key and CA bundle) in the query string,
`Authorization: cpanel USER:TOKEN`, through `urlopen` with the default TLS context (so the CA
comes from SSL_CERT_FILE, as for the plugin).

Usage:
  certbot_dns_cpanel_replay.py dns01 RECORD_NAME VALIDATION   (add, then delete, a TXT record)
  certbot_dns_cpanel_replay.py install DOMAIN CRT_FILE KEY_FILE CHAIN_FILE
Settings: CPGATE_HOST, CPGATE_PORT, CPGATE_USER, CPGATE_TOKEN (SSL_CERT_FILE for the CA).

Prints one JSON line: {"result": [every cpanelresult, in order]}, or
{"exception": "HTTPError", "message": ..., "status": N, "body": JSON} when urlopen raised.
"""

import json
import os
import sys
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen


class Client:
    """The plugin's `_CPanelClient`, request for request (token mode)."""

    def __init__(self, url, username, token):
        self.request_url = "%s/json-api/cpanel" % url
        self.data = {"cpanel_jsonapi_user": username, "cpanel_jsonapi_apiversion": "2"}
        self.headers = {"Authorization": "cpanel %s:%s" % (username, token)}
        self.results = []

    def _get(self, data):
        response = urlopen(Request("%s?%s" % (self.request_url, urlencode(data)), headers=self.headers))
        result = json.load(response)["cpanelresult"]
        self.results.append(result)
        return result

    def add_txt_record(self, record_name, record_content, record_ttl=60):
        zone, name = self._get_zone_and_name(record_name)
        data = dict(self.data, cpanel_jsonapi_module="ZoneEdit", cpanel_jsonapi_func="add_zone_record")
        data.update(domain=zone, name=name, type="TXT", txtdata=record_content, ttl=record_ttl)
        self._get(data)

    def del_txt_record(self, record_name, record_content, record_ttl=60):
        zone, _ = self._get_zone_and_name(record_name)
        lines = self._get_record_line(zone, record_name, record_content, record_ttl)
        data = dict(self.data, cpanel_jsonapi_module="ZoneEdit", cpanel_jsonapi_func="remove_zone_record")
        data["domain"] = zone
        lines.sort(reverse=True)
        for line in lines:
            data["line"] = line
            self._get(data)

    def install_ssl(self, domain, cert_path, key_path, chain_path):
        data = dict(self.data, cpanel_jsonapi_module="SSL", cpanel_jsonapi_func="installssl")
        data.update(domain=domain, crt=open(cert_path).read(), key=open(key_path).read())
        data["cabundle"] = open(chain_path).read()
        self._get(data)

    def _get_zone_and_name(self, record_domain):
        data = dict(self.data, cpanel_jsonapi_module="ZoneEdit", cpanel_jsonapi_func="fetchzones")
        result = self._get(data)
        zones = {z for z in result["data"][0]["zones"] if record_domain == z or record_domain.endswith("." + z)}
        if not zones:
            raise LookupError("Could not get the zone for %s" % record_domain)
        zone = max(zones, key=len)
        return zone, record_domain[: -len(zone) - 1]

    def _get_record_line(self, zone, record_name, record_content, record_ttl):
        data = dict(self.data, cpanel_jsonapi_module="ZoneEdit", cpanel_jsonapi_func="fetchzone_records")
        data["domain"] = zone
        data["name"] = record_name + "." if not record_name.endswith(".") else ""
        data.update(type="TXT", txtdata=record_content, ttl=record_ttl)
        return [int(d["line"]) for d in self._get(data)["data"]]


def main(argv):
    url = "https://%s:%s" % (os.environ["CPGATE_HOST"], os.environ["CPGATE_PORT"])
    client = Client(url, os.environ["CPGATE_USER"], os.environ["CPGATE_TOKEN"])
    try:
        if argv[0] == "dns01":
            client.add_txt_record(argv[1], argv[2])
            client.del_txt_record(argv[1], argv[2])
        elif argv[0] == "install":
            client.install_ssl(*argv[1:5])
        else:
            raise SystemExit("unknown command %r" % argv[0])
    except HTTPError as error:
        body = json.loads(error.read() or b"null")
        print(json.dumps({"exception": "HTTPError", "message": str(error), "status": error.code, "body": body}))
        return
    print(json.dumps({"result": client.results}))


if __name__ == "__main__":
    main(sys.argv[1:])
