#!/usr/bin/env python3
"""Hold a live ved to api/openapi.yaml.

Starts its own daemon (own state dir, socket and --instance, like tests/lib/common.sh),
drives every route of the spec over the unix socket, errors included, and checks each
answer: its status is documented for that route (5xx never passes), its Content-Type is
the documented one, its JSON body (each line, for NDJSON) validates against the
documented schema, and the documented headers (ETag, Location, Allow) are there and
match their schemas. A path the spec lacks must answer 404, a method the path lacks 405,
both in the error form.

A route of the spec that the daemon does not serve (the router's 404) fails, unless
VED_CONFORMANCE_ALLOW_UNSERVED=1 makes it a skip while the runtime is being written.

Needs python3-yaml and python3-jsonschema (Debian: apt-get install python3-yaml
python3-jsonschema). Needs no root.

    python3 tests/integration/test_openapi_conformance.py   (VED_BUILD=dir for the build)
"""

import copy
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:
    import yaml
    import jsonschema
except ImportError as e:  # pragma: no cover
    print(f"needs python3-yaml and python3-jsonschema: {e}", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(1)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("VED_BUILD", os.path.join(REPO, "build"))
SPEC_PATH = os.path.join(REPO, "api", "openapi.yaml")
TEMPLATE = os.environ.get("VED_TEST_TEMPLATE", "busybox")
MIB = 1 << 20


# --- the spec ----------------------------------------------------------------------

def load_spec():
    with open(SPEC_PATH) as f:
        return yaml.safe_load(f)


def resolve(node, root, seen=()):
    """Inline every local $ref (the spec has no cycles), so that each schema stands
    alone as a JSON Schema 2020-12 document (OpenAPI 3.1 schemas are that)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref is supported: {ref}")
            if ref in seen:
                raise ValueError(f"cyclic $ref: {ref}")
            target = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            merged = dict(resolve(target, root, seen + (ref,)))
            merged.update({k: resolve(v, root, seen) for k, v in node.items() if k != "$ref"})
            return merged
        return {k: resolve(v, root, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, root, seen) for v in node]
    return node


SPEC = load_spec()
RESOLVED = resolve(copy.deepcopy(SPEC), SPEC)
Validator = jsonschema.Draft202012Validator
FORMATS = jsonschema.FormatChecker()
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def path_regex(template):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


PATHS = [(tpl, path_regex(tpl)) for tpl in RESOLVED["paths"]]


def match_path(path):
    path = path.split("?", 1)[0]
    for tpl, rx in PATHS:
        if rx.match(path):
            return tpl
    return None


# --- results -----------------------------------------------------------------------

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.covered = set()

    def ok(self, what):
        self.passed += 1
        if os.environ.get("VED_VERBOSE") == "1":
            print(f"   ok: {what}")

    def fail(self, what):
        self.failed += 1
        print(f"   FAILED: {what}")

    def skip(self, what):
        """A documented route the daemon does not serve yet: a failure, unless
        VED_CONFORMANCE_ALLOW_UNSERVED=1 (while the runtime is being written)."""
        if os.environ.get("VED_CONFORMANCE_ALLOW_UNSERVED") == "1":
            self.skipped += 1
            print(f"   skipped: {what}")
        else:
            self.fail(what)

    def check(self, cond, what):
        (self.ok if cond else self.fail)(what)
        return cond


R = Results()


# --- the daemon and HTTP over its socket -----------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("ved", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Answer:
    def __init__(self, method, path, status, headers, body, sent=None):
        self.method, self.path, self.status = method, path, status
        self.sent = sent  # the request body, for messages
        self.headers = headers  # lower-case name -> value
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __str__(self):
        return f"{self.method} {self.path} -> {self.status} {self.body[:300]!r}"


class Daemon:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="vedconf.")
        self.sock = os.path.join(self.tmp, "ved.sock")
        self.state = os.path.join(self.tmp, "state")
        self.log = os.path.join(self.tmp, "ved.log")
        self.instance = f"vc{os.getpid() % 1000000}"  # 1-8 letters and digits
        self.proc = None

    def start(self):
        binary = os.path.join(BUILD, "bin", "ved")
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"no daemon at {binary}: build first, or set VED_BUILD")
        os.makedirs(self.state, exist_ok=True)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [binary, "--foreground", "--state-dir", self.state, "--socket", self.sock,
             "--instance", self.instance, "--log-level", "debug"],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ved exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if self.request("GET", "/v1/host").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"ved did not answer on {self.sock}:\n{self.tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def tail(self, n=40):
        try:
            with open(self.log, errors="replace") as f:
                return "".join("  | " + line for line in f.readlines()[-n:])
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        # Its instance lock (a daemon leaves it, as /run/lock files are left).
        try:
            os.unlink(f"/run/ved/{self.instance}.lock")
        except OSError:
            pass
        if os.environ.get("VED_KEEP_TMP") == "1":
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def request(self, method, path, body=None, headers=None, ctype="application/json",
                timeout=30):
        conn = UnixHTTPConnection(self.sock, timeout)
        hdrs = dict(headers or {})
        if body is not None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            if ctype is not None:
                hdrs["Content-Type"] = ctype
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            heads = {k.lower(): v for k, v in resp.getheaders()}
            sent = body[:120].decode("utf-8", "replace") if body else None
            return Answer(method, path, resp.status, heads, data, sent)
        finally:
            conn.close()


# --- checking an answer against the spec -------------------------------------------------

def validate(schema, value, what):
    errors = sorted(Validator(schema, format_checker=FORMATS).iter_errors(value),
                    key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        R.fail(f"{what}: at {where}: {e.message[:300]}")
        return False
    R.ok(what)
    return True


def documented_response(tpl, method, status):
    """The spec's response object for this answer, or None, and a reason."""
    item = RESOLVED["paths"][tpl]
    op = item.get(method.lower())
    if op is None:
        # A method the path lacks: the path's documented 405.
        for m in HTTP_METHODS:
            if m in item and "405" in item[m]["responses"]:
                return item[m]["responses"]["405"], None
        return None, "no operation documents 405 for this path"
    resp = op["responses"].get(str(status)) or op["responses"].get(f"{str(status)[0]}XX")
    if resp is None:
        resp = op["responses"].get("default")
    if resp is None:
        return None, f"status {status} is not documented (has {sorted(op['responses'])})"
    return resp, None


NOTED = set()


def note_undocumented(schema, value, where, path=""):
    """Print (once each) the fields of an answer that its schema does not name: not a
    failure (answers may grow), but the spec should catch up."""
    if isinstance(value, dict) and "properties" in schema:
        for k, v in value.items():
            if k in schema["properties"]:
                note_undocumented(schema["properties"][k], v, where, f"{path}.{k}")
            elif (where, path, k) not in NOTED:
                NOTED.add((where, path, k))
                print(f"   note: {where}: field {path}.{k} is not in the spec")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for v in value[:3]:
            note_undocumented(schema["items"], v, where, f"{path}[]")
    elif "oneOf" in schema and value is not None:
        for branch in schema["oneOf"]:
            if schema_valid(branch, value):
                note_undocumented(branch, value, where, path)
                break


def conforms(ans, expect=None, allow_missing_route=False):
    """Check one answer against the spec. expect: the status or statuses the test
    wants (besides conformance). Returns True when all checks held."""
    what = f"{ans.method} {ans.path}" + (f" {ans.sent}" if ans.sent else "")
    tpl = match_path(ans.path)
    ok = True

    if expect is not None:
        wanted = expect if isinstance(expect, (tuple, list, set)) else (expect,)
        ok &= R.check(ans.status in wanted,
                      f"{what}: status {ans.status}, expected {'/'.join(map(str, wanted))}"
                      f" (body {ans.body[:200]!r})")
    if ans.status >= 500:
        R.fail(f"{what}: server error {ans.status}: {ans.body[:300]!r}")
        return False

    if tpl is None:
        ok &= R.check(ans.status == 404, f"{what}: a path the spec lacks answers 404")
        resp = RESOLVED["components"]["responses"]["NotFound"]
    else:
        R.covered.add((tpl, ans.method.lower()))
        resp, why = documented_response(tpl, ans.method, ans.status)
        if resp is None:
            R.fail(f"{what}: {why}: {ans.body[:200]!r}")
            return False
        if ans.method.lower() not in RESOLVED["paths"][tpl]:
            ok &= R.check(ans.status == 405, f"{what}: a method the path lacks answers 405"
                          f" (got {ans.status})")

    # Headers: a documented header must be there and match its schema.
    for name, h in (resp.get("headers") or {}).items():
        value = ans.headers.get(name.lower())
        if not R.check(value is not None, f"{what}: header {name} present ({ans.status})"):
            ok = False
            continue
        ok &= validate(h.get("schema", {}), value, f"{what}: header {name}={value!r}")

    content = resp.get("content")
    if not content:
        ok &= R.check(len(ans.body) == 0, f"{what}: {ans.status} has no body (got"
                      f" {len(ans.body)} bytes)")
        return ok
    ctype = ans.headers.get("content-type", "").split(";")[0].strip()
    if not R.check(ctype in content, f"{what}: Content-Type {ctype!r} is one of"
                   f" {sorted(content)}"):
        return False
    schema = content[ctype].get("schema", {})
    if ctype == "application/x-ndjson":
        lines = [line for line in ans.body.decode("utf-8", "replace").split("\n") if line]
        for i, line in enumerate(lines):
            try:
                ok &= validate(schema, json.loads(line), f"{what}: line {i + 1}")
            except ValueError:
                ok = R.check(False, f"{what}: line {i + 1} is not JSON: {line[:200]!r}")
        return ok
    if ctype == "text/plain":
        return ok & validate(schema, ans.body.decode("utf-8", "replace"), f"{what}: body")
    try:
        value = json.loads(ans.body)
    except ValueError:
        R.fail(f"{what}: body is not JSON: {ans.body[:200]!r}")
        return False
    ok &= validate(schema, value, f"{what}: body ({ans.status})")
    note_undocumented(schema, value, f"{tpl} {ans.status}")
    if ans.status >= 400 and isinstance(value, dict) and isinstance(value.get("error"), dict):
        ok &= R.check(value["error"].get("code") == ans.status,
                      f"{what}: error.code {value['error'].get('code')} is the status"
                      f" {ans.status}")
    return ok


# --- the exercise --------------------------------------------------------------------------

def case(title):
    print(f"-- {title}")


def not_served(d, ans):
    """A route of the spec that the daemon does not serve yet: the router's own 404
    ("no such resource: <url>") rather than a handler's. Such routes are skipped,
    not failed, and count as exercised."""
    if ans.status != 404:
        return False
    msg = ((ans.json() or {}).get("error") or {}).get("message", "")
    if not msg.startswith("no such resource"):
        return False
    tpl = match_path(ans.path)
    if tpl is not None:
        R.covered.add((tpl, ans.method.lower()))
    return True


def wait_op(d, ans, secs=20):
    loc = ans.headers.get("location", "")
    m = re.match(r"^/v1/operations/(\d+)$", loc)
    if not m:
        return None
    a = d.request("GET", f"/v1/operations/{m.group(1)}?wait={secs}")
    conforms(a, 200)
    return (a.json() or {}).get("status")


def ensure_template(d):
    """Import TEMPLATE from its recipe's tarball when the daemon serves /v1/templates
    and lacks it (as ensure_template in tests/lib/common.sh)."""
    a = d.request("GET", "/v1/templates")
    if a.status != 200:
        return
    if any(t.get("name") == TEMPLATE for t in (a.json() or {}).get("templates", [])):
        return
    tarball = os.path.join(d.tmp, f"{TEMPLATE}.tar.gz")
    recipe = os.path.join(REPO, "templates", TEMPLATE, "build")
    r = subprocess.run([recipe, tarball], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building template {TEMPLATE} failed: {r.stderr[-1000:]}")
    import hashlib
    with open(tarball, "rb") as f:
        data = f.read()
    a = d.request("POST", f"/v1/templates?name={TEMPLATE}&sha256="
                  f"{hashlib.sha256(data).hexdigest()}", data,
                  ctype="application/octet-stream", timeout=300)
    conforms(a, 202)
    if wait_op(d, a, 300) != "succeeded":
        raise RuntimeError(f"importing template {TEMPLATE} did not succeed")


def exercise(d):
    ensure_template(d)
    case("host")
    conforms(d.request("GET", "/v1/host"), 200)
    conforms(d.request("DELETE", "/v1/host"), 405)
    conforms(d.request("GET", "/v1/nothing"), 404)
    conforms(d.request("GET", "/"), 404)

    case("templates")
    a = d.request("GET", "/v1/templates")
    if not not_served(d, a):
        conforms(a, 200)
        conforms(d.request("GET", f"/v1/templates/{TEMPLATE}"), 200)
        conforms(d.request("GET", "/v1/templates/conf-nosuch"), 404)
        conforms(d.request("GET", "/v1/templates/.hidden"), (400, 404))
        conforms(d.request("POST", "/v1/templates?name=conf-bad", b"not a tarball",
                           ctype="application/json"), 415)
        # Building runs debootstrap for minutes: only the refusals here
        # (tests/integration/test_debian.sh builds for real).
        conforms(d.request("POST", "/v1/templates/build", {"name": "nosuchdistro-1"}), 404)
        conforms(d.request("POST", "/v1/templates/build", {}), 400)
        conforms(d.request("POST", "/v1/templates/build", {"name": "debian-12", "x": 1}), 400)
        conforms(d.request("POST", "/v1/templates/build", b"{}", ctype="text/plain"), 415)
        conforms(d.request("POST", "/v1/templates", b"\0" * 512,
                           ctype="application/octet-stream"), 400)
        conforms(d.request("POST", f"/v1/templates?name={TEMPLATE}", b"\0" * 512,
                           ctype="application/octet-stream"), 409)
        conforms(d.request("POST", "/v1/templates?name=conf-x&sha256=xyz", b"\0" * 512,
                           ctype="application/octet-stream"), 400)
        a = d.request("POST", "/v1/templates?name=conf-junk&sha256=" + "0" * 64, b"\0" * 1024,
                      ctype="application/octet-stream")
        conforms(a, (202, 400))
        if a.status == 202:
            st = wait_op(d, a)
            R.check(st == "failed", f"import of junk fails (status {st})")
        conforms(d.request("GET", "/v1/templates/conf-junk"), 404)
        tarball = os.path.join(d.tmp, f"{TEMPLATE}.tar.gz")
        if os.path.exists(tarball):
            with open(tarball, "rb") as f:
                data = f.read()
            a = d.request("POST", "/v1/templates?name=conf-copy", data,
                          ctype="application/octet-stream", timeout=300)
            conforms(a, 202)
            R.check(wait_op(d, a, 300) == "succeeded", "import of a second copy succeeds")
            conforms(d.request("GET", "/v1/templates/conf-copy"), 200)
            conforms(d.request("DELETE", "/v1/templates/conf-copy"), 200)
            conforms(d.request("GET", "/v1/templates/conf-copy"), 404)
        conforms(d.request("DELETE", "/v1/templates/conf-nosuch"), 404)
        conforms(d.request("PUT", "/v1/templates/conf-nosuch", {}), 405)
    else:
        R.skip("GET /v1/templates is not served (404 from the router)")
        for m, p in (("post", "/v1/templates"), ("get", "/v1/templates/{name}"),
                     ("delete", "/v1/templates/{name}")):
            R.covered.add((p, m))

    case("create")
    body = {"ctid": 101, "ostemplate": TEMPLATE, "name": "conf1",
            "hostname": "conf1.example.com", "ip": ["192.0.2.10"], "ram": "512M",
            "cpulimit": "25%", "description": "conformance"}
    a = d.request("POST", "/v1/ves", body)
    conforms(a, 202)
    R.check(wait_op(d, a) == "succeeded", "create of 101 succeeds")
    a = d.request("POST", "/v1/ves", {"ctid": 102, "ostemplate": TEMPLATE})
    conforms(a, 202)
    wait_op(d, a)
    conforms(d.request("POST", "/v1/ves", body), 409)
    conforms(d.request("POST", "/v1/ves", "{\"ctid\": 105,"), 400)
    conforms(d.request("POST", "/v1/ves", {"ctid": 105, "ostemplate": TEMPLATE, "foo": 1}), 400)
    conforms(d.request("POST", "/v1/ves", {"ctid": 105, "ostemplate": TEMPLATE},
                       ctype="text/plain"), 415)
    conforms(d.request("POST", "/v1/ves", {"ctid": 105, "ostemplate": TEMPLATE,
                                           "description": "x" * (MIB + 10)}), 413)
    conforms(d.request("PUT", "/v1/ves", {}), 405)

    case("list")
    conforms(d.request("GET", "/v1/ves"), 200)
    conforms(d.request("GET", "/v1/ves?state=stopped&name=conf1"), 200)
    conforms(d.request("GET", "/v1/ves?state=bogus"), 400)

    case("show")
    a = d.request("GET", "/v1/ves/101")
    conforms(a, 200)
    etag = a.headers.get("etag", "")
    conforms(d.request("GET", "/v1/ves/conf1"), 200)
    conforms(d.request("GET", "/v1/ves/999"), 404)
    conforms(d.request("POST", "/v1/ves/101", {}), 405)

    case("patch")
    a = d.request("PATCH", "/v1/ves/101", {"ram": "1G", "ipadd": ["192.0.2.11"]},
                  headers={"If-Match": etag})
    conforms(a, 200)
    conforms(d.request("PATCH", "/v1/ves/101", {"ram": "2G"}, headers={"If-Match": etag}), 412)
    conforms(d.request("PATCH", "/v1/ves/101", {"description": None, "swap": 0}), 200)
    conforms(d.request("PATCH", "/v1/ves/101", {"bogus": 1}), 400)
    conforms(d.request("PATCH", "/v1/ves/101", {"ram": "1G"}, ctype="text/plain"), 415)
    conforms(d.request("PATCH", "/v1/ves/101", {"description": "y" * (MIB + 10)}), 413)
    conforms(d.request("PATCH", "/v1/ves/999", {"ram": "1G"}), 404)

    case("state")
    a = d.request("GET", "/v1/ves/101/state")
    if not_served(d, a):
        R.skip("GET /v1/ves/{ve}/state is not served (404 from the router)")
    else:
        conforms(a, 200)
    conforms(d.request("GET", "/v1/ves/999/state"), 404)
    a = d.request("POST", "/v1/ves/101/state", {"action": "stop"})
    if not_served(d, a):
        R.skip("POST /v1/ves/{ve}/state is not served (404 from the router)")
    else:
        conforms(a, 409)
        conforms(d.request("POST", "/v1/ves/101/state", {"action": "fly"}), 400)
        conforms(d.request("POST", "/v1/ves/101/state", {"action": "start", "x": 1}), 400)
        conforms(d.request("POST", "/v1/ves/999/state", {"action": "start"}), 404)
        conforms(d.request("POST", "/v1/ves/101/state", {"action": "start"},
                           ctype="text/plain"), 415)
        a = d.request("POST", "/v1/ves/102/state", {"action": "start"})
        conforms(a, (202, 409))
        if a.status == 202:
            wait_op(d, a, 60)
            a = d.request("GET", "/v1/ves/102/state")
            conforms(a, 200)
            if (a.json() or {}).get("running"):
                conforms(d.request("GET", "/v1/ves/102/state"), 200)
                conforms(d.request("POST", "/v1/ves/102/state", {"action": "start"}), 409)
                a = d.request("POST", "/v1/ves/102/exec",
                              {"command": ["/bin/sh", "-c", "cat; echo err >&2; exit 3"],
                               "stdin": "hello\n", "timeout": 20})
                if conforms(a, 200):
                    r = a.json() or {}
                    R.check((r.get("exit_code"), r.get("stdout"), r.get("stderr")) ==
                            (3, "hello\n", "err\n"), f"exec result {r}")
                # A command the VE lacks: a shell's 127, plain and streaming.
                a = d.request("POST", "/v1/ves/102/exec", {"command": ["nosuchcmd"]})
                if conforms(a, 200):
                    r = a.json() or {}
                    R.check(r.get("exit_code") == 127 and "nosuchcmd" in r.get("stderr", ""),
                            f"exec of a missing command {r}")
                a = d.request("POST", "/v1/ves/102/exec", {"command": ["nosuchcmd"]},
                              headers={"Upgrade": "ved-exec/1", "Connection": "Upgrade"})
                if conforms(a, 400):
                    e = (a.json() or {}).get("error") or {}
                    R.check(e.get("exit_code") == 127, f"streaming exec's error {e}")
                conforms(d.request("POST", "/v1/ves/102/exec", {"command": ["true"],
                                                                "timeout": 0}), 400)
                conforms(d.request("POST", "/v1/ves/102/exec", {"command": ["true"],
                                                                "tty": True}), 400)
                a = d.request("GET", "/v1/ves/102/usage")
                if conforms(a, 200):
                    u = a.json() or {}
                    R.check((u.get("memory") or {}).get("current", 0) > 0,
                            f"usage of a running VE has its memory {u}")
                conforms(d.request("GET", "/v1/usage"), 200)
                conforms(d.request("GET", "/v1/usage?state=running"), 200)
                conforms(d.request("GET", "/v1/usage?state=bogus"), 400)
                a = d.request("GET", "/metrics")
                if conforms(a, 200):
                    R.check('ved_up{ctid="102"' in a.body.decode(errors="replace"),
                            "/metrics has ved_up of VE 102")
                conforms(d.request("POST", "/metrics", {}), 405)
                a = d.request("POST", "/v1/ves/102/state", {"action": "stop", "force": True})
                conforms(a, 202)
                wait_op(d, a, 60)
                a = d.request("GET", "/v1/ves/102/usage")
                if conforms(a, 200):
                    R.check((a.json() or {}).get("memory", 0) is None,
                            "usage of a stopped VE: memory is null")
                conforms(d.request("GET", "/v1/ves/999/usage"), 404)
                conforms(d.request("DELETE", "/v1/ves/102/usage"), 405)
    conforms(d.request("DELETE", "/v1/ves/101/state"), 405)

    case("exec")
    a = d.request("POST", "/v1/ves/101/exec", {"command": ["true"]})
    if not_served(d, a):
        R.skip("POST /v1/ves/{ve}/exec is not served (404 from the router)")
    else:
        conforms(a, 409)  # 101 is stopped
        conforms(d.request("POST", "/v1/ves/101/exec", {"command": []}), 400)
        conforms(d.request("POST", "/v1/ves/101/exec", {"cmd": ["true"]}), 400)
        conforms(d.request("POST", "/v1/ves/999/exec", {"command": ["true"]}), 404)
        conforms(d.request("POST", "/v1/ves/101/exec", {"command": ["true"]},
                           ctype="text/plain"), 415)
        conforms(d.request("GET", "/v1/ves/101/exec"), 405)

    case("console")
    up = {"Upgrade": "ved-exec/1", "Connection": "Upgrade"}
    conforms(d.request("GET", "/v1/ves/101/console"), 200)
    conforms(d.request("GET", "/v1/ves/101/console?tail=10"), 200)
    conforms(d.request("GET", "/v1/ves/101/console?tail=-1"), 400)
    conforms(d.request("GET", "/v1/ves/999/console"), 404)
    conforms(d.request("POST", "/v1/ves/101/console", {}), 400)  # no Upgrade
    conforms(d.request("POST", "/v1/ves/101/console", {}, headers=up), 409)  # 101 is stopped
    conforms(d.request("POST", "/v1/ves/101/console", {"rows": -1}, headers=up), 400)
    conforms(d.request("POST", "/v1/ves/101/console", {"tty": True}, headers=up), 400)
    conforms(d.request("POST", "/v1/ves/999/console", None, headers=up), 404)
    conforms(d.request("POST", "/v1/ves/101/console", {}, headers=up, ctype="text/plain"), 415)
    conforms(d.request("DELETE", "/v1/ves/101/console"), 405)

    case("operations")
    a = d.request("GET", "/v1/operations")
    conforms(a, 200)
    ops = (a.json() or {}).get("operations") or [{}]
    conforms(d.request("GET", "/v1/operations?ctid=101&status=succeeded&limit=5"), 200)
    conforms(d.request("GET", "/v1/operations?limit=0"), 400)
    conforms(d.request("GET", "/v1/operations?status=bogus"), 400)
    conforms(d.request("GET", f"/v1/operations/{ops[-1].get('id', 1)}"), 200)
    conforms(d.request("GET", f"/v1/operations/{ops[0].get('id', 1)}?wait=0"), 200)
    conforms(d.request("GET", "/v1/operations/1?wait=-1"), 400)
    conforms(d.request("GET", "/v1/operations/1?wait=86400"), 400)
    conforms(d.request("GET", "/v1/operations/999999"), 404)
    conforms(d.request("GET", "/v1/operations/abc"), (400, 404))
    conforms(d.request("POST", "/v1/operations", {}), 405)

    case("events")
    conforms(d.request("GET", "/v1/events?follow=0"), 200)
    conforms(d.request("GET", "/v1/events?since=1&follow=0"), 200)
    conforms(d.request("GET", "/v1/events?since=abc&follow=0"), 400)
    conforms(d.request("POST", "/v1/events", {}), 405)
    follow_events(d)

    request_schemas(d)

    case("destroy")
    conforms(d.request("DELETE", "/v1/ves/101?force=bogus"), 400)
    a = d.request("DELETE", "/v1/ves/conf1")
    conforms(a, 202)
    R.check(wait_op(d, a) == "succeeded", "destroy of 101 succeeds")
    conforms(d.request("DELETE", "/v1/ves/101"), 404)
    conforms(d.request("GET", "/v1/ves/101"), 404)
    a = d.request("DELETE", "/v1/ves/102?force=1")
    conforms(a, 202)
    wait_op(d, a, 60)


SAMPLES = {
    "name": "sample1", "hostname": "sample.example.com", "ip": ["192.0.2.60", "2001:db8::60"],
    "nameserver": ["192.0.2.53"], "searchdomain": ["example.com"], "onboot": True,
    "ram": "256M", "swap": 134217728, "cpus": 2, "cpulimit": "50%", "cpuunits": "1000",
    "numproc": 100, "diskspace": "1G", "diskinodes": 100000, "iolimit": "10M",
    "iopslimit": 100, "rate": 10, "stop_timeout": 30, "init": "/sbin/init", "layout": "layered",
    "description": "sample", "ipadd": ["192.0.2.61"], "ipdel": ["192.0.2.61"],
    "netif": "eth0,02:00:00:00:01:70", "bridge": "br170",
    "userpasswd": "root:conformance-Pass1",
    "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH+1at5lvzTmNiWMaCL3iYBFPA0EgHwiUR14vRQUy9x0 conf@ved",
}
# Changing these on a real private area means resizing or rebuilding it: not at the
# edges of their ranges.
NO_EDGES = {"diskspace", "diskinodes"}


def schema_valid(schema, value):
    return Validator(schema, format_checker=FORMATS).is_valid(value)


def integer_range(schema):
    """(minimum, maximum) of the integer branch of a field's schema, or None."""
    for branch in [schema] + schema.get("oneOf", []):
        t = branch.get("type")
        if t == "integer" or (isinstance(t, list) and "integer" in t):
            return branch.get("minimum"), branch.get("maximum")
    return None


def request_schemas(d):
    """The request schemas agree with the daemon: every documented field is taken,
    null resets where the spec allows it, and the integer ranges' edges hold."""
    create = RESOLVED["components"]["schemas"]["VECreate"]
    patch = RESOLVED["components"]["schemas"]["VEPatch"]
    ve_schema = RESOLVED["components"]["schemas"]["VE"]

    case("request schemas: a create with every documented field")
    body = {"ctid": 170, "ostemplate": TEMPLATE}
    body.update({k: SAMPLES[k] for k in create["properties"] if k in SAMPLES})
    R.check(not (set(create["properties"]) - set(body)),
            f"samples for every VECreate field (missing {set(create['properties']) - set(body)})")
    validate(create, body, "the sample create body is a VECreate")
    a = d.request("POST", "/v1/ves", body)
    if not conforms(a, 202):
        return
    wait_op(d, a)

    case("request schemas: PATCH of each documented field, and of null")
    for field, schema in patch["properties"].items():
        if field not in SAMPLES:
            R.fail(f"no sample value for VEPatch field {field}")
            continue
        if field == "ipdel":
            conforms(d.request("PATCH", "/v1/ves/170", {"ipadd": SAMPLES["ipadd"]}), 200)
        value = {field: SAMPLES[field]}
        validate(patch, value, f"PATCH sample {value} is a VEPatch")
        a = d.request("PATCH", "/v1/ves/170", value)
        conforms(a, 200)
        if schema_valid(schema, None):
            a = d.request("PATCH", "/v1/ves/170", {field: None})
            conforms(a, 200)
            ve = a.json() or {}
            if field in ve_schema["properties"] and a.status == 200:
                allows_null = schema_valid(ve_schema["properties"][field], None)
                R.check((ve.get(field) is None) == allows_null,
                        f"PATCH {field}=null gives {ve.get(field)!r}"
                        f" ({'null' if allows_null else 'the default'} expected)")
        else:
            conforms(d.request("PATCH", "/v1/ves/170", {field: None}), 400)

    case("request schemas: the edges of each integer range")
    for field, schema in create["properties"].items():
        rng = integer_range(schema)
        if field == "ctid" or rng is None:
            continue
        lo, hi = rng
        if lo is not None:
            if field not in NO_EDGES:
                conforms(d.request("PATCH", "/v1/ves/170", {field: lo}), 200)
            conforms(d.request("PATCH", "/v1/ves/170", {field: lo - 1}), 400)
        if hi is not None and hi < (1 << 63) - 1:
            if field not in NO_EDGES:
                conforms(d.request("PATCH", "/v1/ves/170", {field: hi}), 200)
            conforms(d.request("PATCH", "/v1/ves/170", {field: hi + 1}), 400)
    a = d.request("DELETE", "/v1/ves/170?force=1")
    conforms(a, 202)
    wait_op(d, a)


def follow_events(d):
    """Follow the stream while a VE is created and destroyed; every line must be an
    Event, and ve.created must come."""
    conn = UnixHTTPConnection(d.sock, timeout=15)
    try:
        conn.request("GET", "/v1/events")
        resp = conn.getresponse()
        heads = {k.lower(): v for k, v in resp.getheaders()}
        a = d.request("POST", "/v1/ves", {"ctid": 150, "ostemplate": TEMPLATE})
        conforms(a, 202)
        wait_op(d, a)
        a = d.request("DELETE", "/v1/ves/150")
        conforms(a, 202)
        wait_op(d, a)
        lines, seen = [], set()
        deadline = time.time() + 10
        while time.time() < deadline and "ve.destroyed" not in seen:
            line = resp.readline()
            if not line:
                break
            if line.strip():
                lines.append(line)
                try:
                    seen.add(json.loads(line).get("type"))
                except ValueError:
                    pass
        ans = Answer("GET", "/v1/events", resp.status, heads, b"".join(lines))
        conforms(ans, 200)
        R.check({"ve.created", "ve.destroyed", "operation.started",
                 "operation.succeeded"} <= seen,
                 f"followed events include the lifecycle (saw {sorted(t for t in seen if t)})")
    except (OSError, http.client.HTTPException) as e:
        R.fail(f"following /v1/events: {e}")
    finally:
        conn.close()


def main():
    d = Daemon()
    try:
        print(f"spec {SPEC_PATH}: {len(RESOLVED['paths'])} paths")
        try:
            d.start()
        except RuntimeError as e:
            R.fail(f"the daemon starts: {e}")
            return
        exercise(d)
        case("coverage: every operation of the spec was exercised")
        for tpl, item in RESOLVED["paths"].items():
            for m in HTTP_METHODS:
                if m in item and (tpl, m) not in R.covered:
                    R.fail(f"{m.upper()} {tpl} was not exercised")
        case("the daemon stops cleanly")
        rc = d.stop()
        R.check(rc == 0, f"exit status after SIGTERM is 0 (got {rc})")
    except Exception as e:  # noqa: BLE001 - any crash of the test is one failure
        import traceback
        traceback.print_exc()
        R.fail(f"the test stopped early: {e}")
    finally:
        if R.failed:
            print(f"--- last lines of the daemon's log ({d.log}):")
            print(d.tail())
        d.cleanup()
        print()
        line = f"{R.passed} passed, {R.failed} failed"
        if R.skipped:
            line += f", {R.skipped} skipped"
        print(line)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
    sys.exit(1 if R.failed or not R.passed else 0)
