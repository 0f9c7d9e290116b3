#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/, drawn from the attack suites
(tests/security_http.rs, tests/security_tokens.rs) and cpanel-wire.md. Idempotent; files the
fuzzer adds later sit beside these. Run from the repository root: python3 fuzz/seed_corpus.py"""
import hashlib, json, os, glob

ROOT = os.path.dirname(os.path.abspath(__file__))
SEP = b"\xff"
NOW = 1_900_000_000

def put(target, name, data):
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

# --- authorization: raw Authorization values, and header 0xff payload pairs -----------------
raw = {
    "bearer": "Bearer a.b.c",
    "bearer-lower": "bearer eyJhbGciOiJFZERTQSJ9.e30.c2ln",
    "cpanel": "cpanel alice:a.b.c",
    "basic": "Basic YWxpY2U6YS5iLmM=",
    "basic-noncanonical": "Basic YWxpY2U6YS5iLmM",
    "two-spaces": "Bearer  a.b.c",
    "tab": "Bearer\ta.b.c",
    "empty": "",
    "scheme-only": "Bearer",
    "none-sig": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",
    "four-parts": "Bearer a.b.c.d",
    "cpanel-no-colon": "cpanel alicea.b.c",
    "cpanel-bad-dev": "cpanel ../x:a.b.c",
    "obs-text": "Bearer a.b.\xc3\xa9",
}
for k, v in raw.items():
    put("authorization", "raw-" + k, v)

def claims(**over):
    c = {"iss": "cpgate", "aud": "cpanel", "sub": "alice", "iat": NOW, "nbf": NOW, "exp": NOW + 600,
         "jti": "5f0c7a1e-1d2b-4c3d-9e8f-0a1b2c3d4e5f"}
    for k, v in over.items():
        if v is DROP:
            c.pop(k, None)
        else:
            c[k] = v
    return c

DROP = object()
HDR = {"alg": "EdDSA", "typ": "at+jwt", "kid": "fuzz-kid"}

def pair(name, header, payload):
    h = header if isinstance(header, (bytes, str)) else json.dumps(header)
    p = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    h = h.encode() if isinstance(h, str) else h
    p = p.encode() if isinstance(p, str) else p
    put("authorization", "signed-" + name, h + SEP + p)

pair("valid", HDR, claims())
pair("valid-scope", HDR, claims(scope="Email::list_pops api2:ZoneEdit::*"))
for alg in ["none", "None", "NONE", "nOnE", "HS256", "RS256", "ES256", "PS256", "EdDSA "]:
    pair("alg-" + alg.strip(), dict(HDR, alg=alg), claims())
for extra in ["crit", "jku", "jwk", "x5u", "x5c", "cty"]:
    pair("header-" + extra, dict(HDR, **{extra: "x" if extra != "crit" else ["exp"]}), claims())
pair("header-null-jku", dict(HDR, jku=None), claims())
pair("kid-traversal", dict(HDR, kid="../../../../dev/null"), claims())
pair("kid-url", dict(HDR, kid="https://evil.example/key"), claims())
pair("kid-sql", dict(HDR, kid="x' OR '1'='1"), claims())
pair("typ-jwt", dict(HDR, typ="JWT"), claims())
pair("typ-missing", {"alg": "EdDSA", "kid": "fuzz-kid"}, claims())
pair("dup-header-alg", '{"alg":"none","alg":"EdDSA","typ":"at+jwt","kid":"fuzz-kid"}', claims())
pair("dup-claim-sub", HDR, json.dumps(claims())[:-1] + ',"sub":"root"}')
pair("escaped-dup-claim", HDR, json.dumps(claims())[:-1] + ',"\\u0073ub":"root"}')
for k, v in {"aud": 1, "aud-list": ["cpanel"], "iss": {}, "sub": 7, "exp": "1900000600",
             "exp-float": 1900000600.5, "iat": -1, "nbf": None, "jti": 5, "scope": None}.items():
    key = k.split("-")[0]
    pair("wrong-type-" + k, HDR, claims(**{key: v}))
for k in ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]:
    pair("missing-" + k, HDR, claims(**{k: DROP}))
pair("expired", HDR, claims(iat=NOW - 4000, nbf=NOW - 4000, exp=NOW - 3400))
pair("future-iat", HDR, claims(iat=NOW + 600, nbf=NOW + 600, exp=NOW + 1200))
pair("future-nbf", HDR, claims(nbf=NOW + 300))
pair("exp-u64-max", HDR, claims(exp=2**64 - 1))
pair("exp-over-u64", HDR, json.dumps(claims())[:-1].replace(str(NOW + 600), "18446744073709551616") + "}")
pair("lifetime-over-max", HDR, claims(exp=NOW + 3601))
pair("lifetime-at-max", HDR, claims(exp=NOW + 3600))
pair("leeway-edge", HDR, claims(iat=NOW + 30, nbf=NOW + 30, exp=NOW + 100))
pair("unknown-claim", HDR, claims(admin=True))
pair("bad-sub", HDR, claims(sub="../root"))
pair("bad-jti", HDR, claims(jti="a b"))
pair("scope-empty", HDR, claims(scope=""))
pair("scope-double-space", HDR, claims(scope="Email::list_pops  Email::add_pop"))
pair("not-object", HDR, "[1,2]")
pair("trailing", HDR, json.dumps(claims()) + " x")
pair("exp-1e10", HDR, json.dumps(claims()).replace(str(NOW + 600), "1.9e9"))
put("authorization", "signed-huge", json.dumps(HDR).encode() + SEP + json.dumps(claims(scope="Email::list_pops " * 600)).encode())

# --- classify: M path 0xff query 0xff content-type 0xff body ---------------------------------
def req(name, method, path, query=None, ctype=None, body=None):
    m = b"\x00" if method == "GET" else b"\x01"
    parts = [path.encode() if isinstance(path, str) else path]
    for x in (query, ctype, body):
        if x is None and body is None and ctype is None and x is query:
            break
        parts.append(b"" if x is None else (x.encode() if isinstance(x, str) else x))
    put("classify", name, m + SEP.join(parts))

req("uapi", "GET", "/execute/Email/list_pops")
req("uapi-query", "GET", "/execute/Email/list_pops", "regex=a%3Bb&regex=c&api.output=json")
req("dup-keys", "GET", "/execute/Email/list_pops", "a=1&a=2&a-0=x&a=3")
req("form-post", "POST", "/execute/Email/add_pop", "", "application/x-www-form-urlencoded", "email=a&domain=example.com&password=p%26w")
req("query-beats-body", "POST", "/execute/Email/add_pop", "domain=example.com", "application/x-www-form-urlencoded", "domain=evil.example&email=a")
req("json", "POST", "/execute/Email/add_pop", "domain=x", "application/json", '{"email":"a","domain":"example.com","file-x":"y"}')
req("json-charset", "POST", "/execute/Email/add_pop", "", "application/json; charset=utf-8", '{"a":1}')
req("json-nested", "POST", "/execute/Email/add_pop", "", "application/json", '{"a":{"b":1}}')
req("json-dup", "POST", "/execute/Email/add_pop", "", "application/json", '{"a":1,"a":2}')
req("multipart", "POST", "/execute/Fileman/upload_files", "", "multipart/form-data; boundary=XyZ",
    "--XyZ\r\nContent-Disposition: form-data; name=\"dir\"\r\n\r\n/home\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file-1\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n")
req("crlf-body", "POST", "/execute/Email/add_pop", "", "application/x-www-form-urlencoded", "a=1\r\nb=2")
req("batch", "GET", "/execute/Batch/strict", 'command=["Email","list_pops",{}]&command=["DomainInfo","list_domains",{"a":"b"}]')
req("batch-nested", "GET", "/execute/Batch/strict", 'command=["Batch","strict",{"command":"[\\"Email\\",\\"delete_pop\\",{}]"}]')
req("api2", "GET", "/json-api/cpanel", "cpanel_jsonapi_module=ZoneEdit&cpanel_jsonapi_func=fetchzone_records&cpanel_jsonapi_apiversion=2&domain=example.com")
req("api2-dup-func", "GET", "/json-api/cpanel", "cpanel_jsonapi_module=Email&cpanel_jsonapi_func=listpops&cpanel_jsonapi_func=delpop&cpanel_jsonapi_apiversion=2")
req("api1", "GET", "/json-api/cpanel", "cpanel_jsonapi_module=Email&cpanel_jsonapi_func=listpops&cpanel_jsonapi_apiversion=1")
req("api2-user", "POST", "/json-api/cpanel", "cpanel_jsonapi_user=root", "application/x-www-form-urlencoded", "cpanel_jsonapi_module=ZoneEdit&cpanel_jsonapi_func=fetchzone_records&cpanel_jsonapi_apiversion=2")
for i, p in enumerate(["/execute/Email/../Email/list_pops", "/execute/Email/%2e%2e/x", "/execute/Email%2flist_pops",
                       "//execute/Email/list_pops", "/execute/Email/list_pops;x", "/execute/Email\\list_pops",
                       "/execute/Email/list_pops/", "/cpsess123/execute/Email/list_pops", "/execute/Email/list_pops%3Fjunk",
                       "/execute/_Email/list_pops", "/execute/Email/_list", "/frontend/jupiter/index.html", "*",
                       "/execute/Email/list_pops\xc3\xa9", "/execute/execute/Email/x", "/json-api/cpanel/x"]):
    req("path-%02d" % i, "GET", p)
req("nul", "GET", "/execute/Email/list_pops", "a=%00")
req("bad-pct", "GET", "/execute/Email/list_pops", "a=%zz&b=%c3")
req("no-eq", "GET", "/execute/Email/list_pops", "a&b=1")
req("get-body", "GET", "/execute/Email/list_pops", "", "application/x-www-form-urlencoded", "a=1")
req("api-output-xml", "GET", "/execute/Email/list_pops", "api.output=xml")

# --- policy --------------------------------------------------------------------------------
repo = os.path.dirname(ROOT)
for path in glob.glob(os.path.join(repo, "policies", "*.toml")):
    put("policy", "repo-" + os.path.basename(path), open(path, "rb").read())
policies = {
    "alice": open(os.path.join(ROOT, "harness", "proxy.rs")).read().split('r#"', 1)[1].split('"#', 1)[0],
    "limited": '[rate_limit]\nper_minute = 1\nburst = 2\n[[allow]]\ncalls = ["Email::list_pops"]\n',
    "disabled": 'enabled = false\n[[allow]]\ncalls = ["Email::list_pops"]\n',
    "expired": 'expires = 2020-01-01T00:00:00Z\n[[allow]]\ncalls = ["Email::list_pops"]\n',
    "office": 'source_ips = ["203.0.113.0/24", "2001:db8::/32"]\n[[allow]]\ncalls = ["Email::list_pops"]\n',
    "wildcards": '[[allow]]\ncalls = ["Email::*", "*::list_*"]\n[[deny]]\ncalls = ["Tokens::*"]\n',
    "hatch": '[[allow]]\ncalls = ["Tokens::create_full_access"]\n',
    "account": 'account = "shop"\nmax_token_ttl = "30m"\n[[allow]]\ncalls = ["Email::list_pops"]\n',
    "unknown-key": 'bogus = 1\n[[allow]]\ncalls = ["Email::list_pops"]\n',
    "bad-pattern": '[[allow]]\ncalls = ["Email::list pops", "::", "*"]\n',
    "params": '[[allow]]\ncalls = ["Email::add_pop"]\nmethods = ["POST", "GET"]\n[allow.params]\ndomain = ["*.example.com", "example.com"]\nquota = ["1*"]\n',
    "empty": "",
    "deep": "a = " + "[" * 200 + "]" * 200 + "\n",
}
for k, v in policies.items():
    put("policy", k + ".toml", v)

# --- proxy: whole requests (HTTP/1 and h2c) --------------------------------------------------
def h1(method, target, headers=(), body="", host=True, auth="Bearer @TOKEN@", version="HTTP/1.1"):
    lines = [f"{method} {target} {version}"]
    if host:
        lines.append("Host: gw")
    if auth:
        lines.append("Authorization: " + auth)
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("latin-1")

FORM = "Content-Type: application/x-www-form-urlencoded"
AP = "email=a&domain=example.com"
seeds = {
    "get": h1("GET", "/execute/Email/list_pops"),
    "get-basic": h1("GET", "/execute/DomainInfo/list_domains", auth="Basic @BASIC@"),
    "get-cpanel": h1("GET", "/execute/Email/list_pops", auth="cpanel alice:@TOKEN@"),
    "post": h1("POST", "/execute/Email/add_pop", [FORM, f"Content-Length: {len(AP)}"], AP),
    "post-denied-domain": h1("POST", "/execute/Email/add_pop", [FORM, "Content-Length: 30"], "email=a&domain=evil.example.co"),
    "post-get-denied": h1("GET", "/execute/Email/add_pop?" + AP),
    "delete": h1("GET", "/execute/Email/delete_pop?email=a"),
    "api2": h1("GET", "/json-api/cpanel?cpanel_jsonapi_module=ZoneEdit&cpanel_jsonapi_func=fetchzone_records&cpanel_jsonapi_apiversion=2"),
    "batch": h1("GET", '/execute/Batch/strict?command=%5B%22Email%22%2C%22list_pops%22%2C%7B%7D%5D'),
    "batch-deny": h1("GET", '/execute/Batch/strict?command=%5B%22Email%22%2C%22delete_pop%22%2C%7B%7D%5D'),
    "chunked": h1("POST", "/execute/Email/add_pop", [FORM, "Transfer-Encoding: chunked"], f"{len(AP):x}\r\n{AP}\r\n0\r\n\r\n"),
    "te-cl": h1("POST", "/execute/Email/add_pop", [FORM, "Content-Length: 4", "Transfer-Encoding: chunked"],
                f"{len(AP):x}\r\n{AP}\r\n0\r\n\r\n" + "GET /execute/Email/delete_pop HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer @TOKEN@\r\n\r\n"),
    "te-chunked-chunked": h1("POST", "/execute/Email/add_pop", [FORM, "Transfer-Encoding: chunked, chunked"], f"{len(AP):x}\r\n{AP}\r\n0\r\n\r\n"),
    "dup-cl": h1("POST", "/execute/Email/add_pop", [FORM, f"Content-Length: {len(AP)}", f"Content-Length: {len(AP)}"], AP),
    "conn-auth": h1("GET", "/execute/Email/list_pops", ["Connection: , Authorization"]),
    "conn-ua": h1("GET", "/execute/Email/list_pops", ["Connection: user-agent", "User-Agent: x"]),
    "underscore": h1("GET", "/execute/Email/list_pops", ["X_Forwarded_For: 1"]),
    "two-host": h1("GET", "/execute/Email/list_pops", ["Host: evil"]),
    "no-host": h1("GET", "/execute/Email/list_pops", host=False),
    "absolute": h1("GET", "http://evil.example/execute/Email/list_pops"),
    "authority": h1("CONNECT", "evil.example:443"),
    "asterisk": h1("OPTIONS", "*"),
    "trace": h1("TRACE", "/execute/Email/list_pops"),
    "lower-get": h1("get", "/execute/Email/list_pops"),
    "dotdot": h1("GET", "/execute/Email/../Email/list_pops"),
    "pct": h1("GET", "/execute/Email/%2e%2e/list_pops"),
    "hostile-headers": h1("GET", "/execute/Email/list_pops", ["Cookie: a=b", "Proxy-Authorization: x", "X-Forwarded-For: 1.2.3.4", "Forwarded: for=x", "TE: trailers", "Accept: */*"]),
    "pipelined": h1("GET", "/execute/Email/list_pops") + h1("POST", "/execute/Email/add_pop", [FORM, f"Content-Length: {len(AP)}"], AP) + h1("GET", "/execute/Email/delete_pop"),
    "http10": h1("GET", "/execute/Email/list_pops", version="HTTP/1.0"),
    "json": h1("POST", "/execute/Email/add_pop", ["Content-Type: application/json", "Content-Length: 37"], '{"email":"a","domain":"example.com"}'),
    "expect": h1("POST", "/execute/Email/add_pop", [FORM, "Expect: 100-continue", f"Content-Length: {len(AP)}"], AP),
    "upgrade-h2c": h1("GET", "/execute/Email/list_pops", ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"]),
}

def frame(kind, flags, stream, payload):
    n = len(payload)
    return bytes([n >> 16 & 255, n >> 8 & 255, n & 255, kind, flags]) + stream.to_bytes(4, "big") + payload

def hpack_int(first, bits, v):
    mx = (1 << bits) - 1
    if v < mx:
        return bytes([first | v])
    out = [first | mx]
    v -= mx
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    out.append(v)
    return bytes(out)

def hpack(fields):
    out = b""
    for k, v in fields:
        out += b"\x00" + hpack_int(0, 7, len(k)) + k.encode() + hpack_int(0, 7, len(v)) + v.encode()
    return out

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")
def h2(fields, body=None):
    flags = 0x4 | (0 if body else 0x1)
    out = PREFACE + frame(1, flags, 1, hpack(fields))
    if body:
        out += frame(0, 0x1, 1, body.encode())
    return out

P = [(":method", "GET"), (":scheme", "http"), (":authority", "gw"), (":path", "/execute/Email/list_pops")]
A = [("authorization", "Bearer @TOKEN@")]
seeds["h2-get"] = h2(P + A)
seeds["h2-post"] = h2([(":method", "POST"), (":scheme", "http"), (":authority", "gw"), (":path", "/execute/Email/add_pop")] + A + [("content-type", "application/x-www-form-urlencoded")], AP)
seeds["h2-dotdot"] = h2(P[:3] + [(":path", "/execute/Email/../x/list_pops")] + A)
seeds["h2-connection"] = h2(P + A + [("connection", "authorization")])
seeds["h2-underscore"] = h2(P + A + [("x_a", "1")])
seeds["h2-host-mismatch"] = h2(P + A + [("host", "evil")])
seeds["h2-trace"] = h2([(":method", "TRACE")] + P[1:] + A)
for k, v in seeds.items():
    put("proxy", k, v)
print("seeded")
