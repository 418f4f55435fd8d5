#!/usr/bin/env python3
"""A real Prometheus server scraping a real 3-node distrod cluster.

    cluster_scrape.py --distrod BIN --distroctl BIN --prometheus BIN
                      --rules docs/prometheus/distrod.rules.yml
                      --dashboard docs/prometheus/distrod.dashboard.json

What it shows: the series the alerts and the dashboard need are there, with
sane values, as Prometheus itself sees them after real scrapes -- not just
that /metrics parses (tests/integration/test_http.c does that with promtool).
Asserted through Prometheus's HTTP query API (/api/v1/query):

  - every target `up == 1`, and /api/v1/targets says each is healthy;
  - distrod_instances equals what was registered, on every node (each node
    holds a full copy), and the limit gauges (distrod_*_max) are there;
  - operations rates > 0 on every node (heartbeats and lists, by op);
  - peer health: each node sees its 2 peers UP and READY (and itself), has
    a quorum, is READY, and its map gives all 16384 slots to the 3 members;
  - replication: sync records arrive on every node, none dropped, and the
    lag p99, histogram_quantile(0.99, sum by (le, instance)
    (rate(distrod_replication_lag_seconds_bucket[..]))), is finite and
    under a second on loopback;
  - the rules file, loaded into this Prometheus: every recording rule has a
    series for every node, no alert is pending or firing on a healthy
    cluster, and once a node is killed (kill -9) DistrodMemberDown (from
    each survivor, about it) and DistrodTargetDown (it) become active;
  - every distrod_* name the rules and the dashboard use is one these nodes
    export (Prometheus's own list of scraped names), and every dashboard
    expression returns data.

Processes: three distrod nodes on 127.0.0.1, each with --port 0, --http-port
0 and --nacos-port 0 and the matching port files (the peer ports must be
known before start, for cluster.conf: chosen by binding port 0, all held
until every one is chosen), short cluster timers as tests/cluster/harness.c,
and one Prometheus on a free loopback port with its TSDB in the run
directory. Every child runs under `setpriv --pdeathsig KILL`, so it dies
with this script even when ctest's timeout kills the script; on any exit
the script kills them. DISTRO_PROM_KEEP=1 keeps the run directory (configs,
logs, the TSDB).

Traffic, all to loopback, instance addresses from documentation ranges
(192.0.2.0/24, 198.18.0.0/15; nothing ever connects to them): instances
registered through each node's Nacos API and through distroctl on each
node's client port; then, until the checks are done, a thread beats every
instance, re-registers one per node per round with new metadata (a real
change, so sync records flow and the lag histogram fills) and lists through
every node.

Every wait is bounded and polls a condition; nothing sleeps as an
assertion. Exit status 0 passed, 1 failed (with what was seen and the tail
of every log), 77 skipped (no prometheus binary: tools/deps installs it).
"""

import argparse
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

NODES = 3
SLOTS = 16384
START_S = 30  # a node (ASan build) listens and is READY within this
PROM_START_S = 60
SCRAPE_S = 1  # scrape_interval and evaluation_interval
RATE = "[15s]"  # rate windows: 15 scrapes
GROUPS = ("promA", "promB")
PER_NODE_NACOS = 6  # instances registered through each node's Nacos API
PER_NODE_BINARY = 2  # and through each node's client port (distroctl)
INSTANCES = NODES * (PER_NODE_NACOS + PER_NODE_BINARY)
LAG_BOUND_S = 1.0

T0 = time.monotonic()


def say(msg):
    print(f"+{time.monotonic() - T0:7.3f}s {msg}", flush=True)


class Failure(Exception):
    pass


def fail(msg):
    raise Failure(msg)


def wait_for(what, timeout_s, cond, period_s=0.1):
    """Polls cond() (True, or False / a string saying what it saw) until True; bounded."""
    end = time.monotonic() + timeout_s
    last = None
    while True:
        check_children()
        last = cond()
        if last is True:
            return
        if time.monotonic() >= end:
            break
        time.sleep(period_s)
    fail(f"timed out after {timeout_s} s waiting for {what}" +
         (f"; last seen: {last}" if isinstance(last, str) else ""))


# ---- processes ----

children = []  # {name, proc, log}


def spawn(name, argv, log):
    with open(log, "ab") as f:
        f.write(f"=== cluster_scrape.py: {' '.join(argv)}\n".encode())
        f.flush()
        proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", *argv],
                                stdin=subprocess.DEVNULL, stdout=f, stderr=f)
    children.append({"name": name, "proc": proc, "log": log})
    return proc


def check_children():
    for c in children:
        rc = c["proc"].poll()
        if rc is not None and not c.get("stopped"):
            fail(f"{c['name']} exited with status {rc} (see its log below)")


def kill_children():
    for c in children:
        if c["proc"].poll() is None:
            c["proc"].kill()
            c["proc"].wait()


def dump_logs():
    for c in children:
        try:
            with open(c["log"], "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()[-40:]
        except OSError:
            lines = ["(no log)"]
        sys.stderr.write(f"---- {c['name']}: last 40 lines of {c['log']} ----\n")
        sys.stderr.write("\n".join(lines) + "\n")


def free_ports(count):
    """Free loopback ports: bind port 0 for each, hold all, then release."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def read_port(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


# ---- HTTP ----

def http(method, port, path, timeout_s=5.0):
    """(status, body) of one request to 127.0.0.1:port; status 0 on a transport error."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


class Prom:
    def __init__(self, port, instances):
        self.port = port
        self.instances = instances  # the instance label (scraped address) -> node name

    def query(self, expr):
        """The result list of an instant query; fails on any error."""
        status, body = http("GET", self.port,
                            "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if status != 200:
            fail(f"query {expr!r}: HTTP {status}: {body[:500]}")
        doc = json.loads(body)
        if doc.get("status") != "success":
            fail(f"query {expr!r}: {body[:500]}")
        if doc["data"]["resultType"] != "vector":
            fail(f"query {expr!r}: a {doc['data']['resultType']}, not a vector")
        return doc["data"]["result"]

    def by_node(self, expr):
        """{node: float value} of a query whose series carry the node label, or
        the instance label (the recording rules keep job and instance only)."""
        out = {}
        for r in self.query(expr):
            node = r["metric"].get("node") or self.instances.get(r["metric"].get("instance"))
            if node is None or node in out:
                fail(f"query {expr!r}: unexpected series {r['metric']}")
            out[node] = float(r["value"][1])
        return out

    def get(self, path):
        status, body = http("GET", self.port, path)
        if status != 200:
            fail(f"GET {path}: HTTP {status}: {body[:500]}")
        return json.loads(body)["data"]


# ---- names in the rules and the dashboard ----

NAME_RE = re.compile(r"\bdistrod_[a-z0-9_]+")


def dashboard_exprs(path):
    """Every target expression of the dashboard, with Grafana's variables replaced."""
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dashboard_check  # the same extraction and substitution as the parse check

    with open(path) as f:
        return dashboard_check.exprs(json.load(f))


def main():
    ap = argparse.ArgumentParser()
    for a in ("--distrod", "--distroctl", "--prometheus", "--rules", "--dashboard"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    if not shutil.which(args.prometheus):
        print(f"SKIP: no {args.prometheus} (Debian package prometheus; tools/deps installs it)")
        return 77

    work = tempfile.mkdtemp(prefix="distro-prom-")
    say(f"run directory {work}")
    stop_traffic = threading.Event()
    traffic_errors = []
    try:
        run(args, work, stop_traffic, traffic_errors)
        say("PASS")
        return 0
    except Failure as e:
        stop_traffic.set()
        dump_logs()
        sys.stderr.write(f"FAIL: {e}\n")
        return 1
    finally:
        stop_traffic.set()
        kill_children()
        if os.environ.get("DISTRO_PROM_KEEP"):
            sys.stderr.write(f"cluster_scrape: kept {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work, stop_traffic, traffic_errors):
    # ---- the cluster ----
    peer_ports = free_ports(NODES)
    conf = os.path.join(work, "cluster.conf")
    with open(conf, "w") as f:
        f.write("# cluster_scrape.py\n")
        for p in peer_ports:
            f.write(f"127.0.0.1:{p}\n")
    secret = os.path.join(work, "secret")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secrets.token_hex(16).encode())
    os.close(fd)

    nodes = []
    for i, pp in enumerate(peer_ports):
        n = {"i": i, "name": f"n{i}", "peer": f"127.0.0.1:{pp}",
             "files": {k: os.path.join(work, f"node{i}.{k}") for k in ("port", "http", "nacos")},
             "log": os.path.join(work, f"node{i}.log")}
        spawn(f"distrod node {i}", [
            args.distrod, "--bind", "127.0.0.1",
            "--port", "0", "--port-file", n["files"]["port"],
            "--http-bind", "127.0.0.1", "--http-port", "0", "--http-port-file", n["files"]["http"],
            "--nacos-port", "0", "--nacos-port-file", n["files"]["nacos"],
            "--workers", "2", "--log-level", "info",
            "--cluster-conf", conf, "--cluster-secret-file", secret, "--peer-port", str(pp),
            "--peer-ping", "50", "--peer-suspect", "300", "--peer-down", "900",
            "--verify-interval", "200", "--startup-wait", "1000",
        ], n["log"])
        nodes.append(n)

    def ports_written():
        missing = []
        for n in nodes:
            for k, path in n["files"].items():
                p = read_port(path)
                if p is None:
                    missing.append(f"node {n['i']} {k}")
                n[k] = p
        return True if not missing else "no port file yet: " + ", ".join(missing)

    wait_for("every node's port files", START_S, ports_written)

    def all_ready():
        seen = []
        for n in nodes:
            status, _ = http("GET", n["http"], "/health", 2.0)
            if status != 200:
                seen.append(f"node {n['i']} /health {status}")
        return True if not seen else ", ".join(seen)

    wait_for("every node READY (/health 200)", START_S, all_ready)
    say("cluster READY: " + ", ".join(
        f"n{n['i']} client {n['port']} admin {n['http']} nacos {n['nacos']} peer {n['peer']}"
        for n in nodes))

    # ---- Prometheus ----
    prom_port = free_ports(1)[0]
    prom_dir = os.path.join(work, "prometheus")
    os.makedirs(os.path.join(prom_dir, "data"))
    rules = os.path.join(prom_dir, "distrod.rules.yml")
    shutil.copy(args.rules, rules)
    cfg = os.path.join(prom_dir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""# cluster_scrape.py: the 3 nodes' admin ports, every second.
global:
  scrape_interval: {SCRAPE_S}s
  scrape_timeout: {SCRAPE_S}s
  evaluation_interval: {SCRAPE_S}s
rule_files:
  - {rules}
scrape_configs:
  - job_name: distrod
    static_configs:
""")
        for n in nodes:
            f.write(f"""      - targets: ["127.0.0.1:{n['http']}"]
        labels: {{node: {n['name']}, peer: "{n['peer']}"}}
""")
    spawn("prometheus", [
        args.prometheus, f"--config.file={cfg}",
        f"--storage.tsdb.path={os.path.join(prom_dir, 'data')}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--storage.tsdb.retention.time=1h", "--log.level=info",
    ], os.path.join(work, "prometheus.log"))
    prom = Prom(prom_port, {f"127.0.0.1:{n['http']}": n["name"] for n in nodes})

    def prom_ready():
        status, body = http("GET", prom_port, "/-/ready", 2.0)
        return True if status == 200 else f"/-/ready {status} {body[:80]}"

    wait_for(f"Prometheus ready on 127.0.0.1:{prom_port}", PROM_START_S, prom_ready, 0.25)
    say(f"Prometheus ready on 127.0.0.1:{prom_port}")

    # ---- traffic ----
    insts = []  # (node index it was registered through, group, service, ip, port, how)
    for n in nodes:
        for k in range(PER_NODE_NACOS):
            j = n["i"] * PER_NODE_NACOS + k
            insts.append((n["i"], GROUPS[0], f"prom-svc-{j % 4}", f"192.0.2.{10 + j}", 8080, "nacos"))
        for k in range(PER_NODE_BINARY):
            j = n["i"] * PER_NODE_BINARY + k
            insts.append((n["i"], GROUPS[1], f"prom-bin-{j % 2}", f"198.18.0.{10 + j}", 9090, "binary"))
    assert len(insts) == INSTANCES

    def nacos_register(node, inst, meta):
        _, group, svc, ip, port, _ = inst
        q = urllib.parse.urlencode({"serviceName": svc, "groupName": group, "ip": ip,
                                    "port": port, "metadata": json.dumps(meta)})
        return http("POST", node["nacos"], f"/nacos/v1/ns/instance?{q}")

    def distroctl(node, *argv):
        return subprocess.run([args.distroctl, "-s", f"127.0.0.1:{node['port']}", *argv],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=20)

    for inst in insts:
        node = nodes[inst[0]]
        if inst[5] == "nacos":
            status, body = nacos_register(node, inst, {"round": "0"})
            if status != 200 or body.strip() != "ok":
                fail(f"Nacos register {inst} through node {inst[0]}: {status} {body[:200]}")
        else:
            r = distroctl(node, "register", inst[2], f"{inst[3]}:{inst[4]}", "--group", inst[1])
            if r.returncode != 0:
                fail(f"distroctl register {inst} through node {inst[0]}: {r.returncode} "
                     f"{r.stdout} {r.stderr}")
    say(f"registered {INSTANCES} instances through every node (Nacos API and client port)")

    def traffic():
        """Beats, changes and lists through every node until told to stop."""
        rnd = 0
        while not stop_traffic.is_set():
            rnd += 1
            for inst in insts:
                node = nodes[(inst[0] + rnd) % NODES]  # every node sees beats for every owner
                _, group, svc, ip, port, how = inst
                q = urllib.parse.urlencode({"serviceName": svc, "groupName": group,
                                            "ip": ip, "port": port})
                status, body = http("PUT", node["nacos"], f"/nacos/v1/ns/instance/beat?{q}")
                if status != 200 or '"code":10200' not in body:
                    traffic_errors.append(f"beat {ip}:{port} via n{node['i']}: {status} {body[:200]}")
            for n in nodes:  # one real change per node per round: sync records flow
                inst = insts[(rnd * 5 + n["i"] * PER_NODE_NACOS) % len(insts)]
                if inst[5] == "nacos":
                    status, body = nacos_register(n, inst, {"round": str(rnd)})
                    if status != 200:
                        traffic_errors.append(f"update via n{n['i']}: {status} {body[:200]}")
                q = urllib.parse.urlencode({"serviceName": "prom-svc-0", "groupName": GROUPS[0]})
                status, body = http("GET", n["nacos"], f"/nacos/v1/ns/instance/list?{q}")
                if status != 200:
                    traffic_errors.append(f"Nacos list via n{n['i']}: {status} {body[:200]}")
                r = distroctl(n, "list", "prom-bin-0", "--group", GROUPS[1])
                if r.returncode != 0:
                    traffic_errors.append(f"distroctl list via n{n['i']}: {r.stderr[:200]}")
            stop_traffic.wait(0.2)

    t = threading.Thread(target=traffic, daemon=True)
    t.start()

    def no_traffic_errors():
        if traffic_errors:
            fail("traffic: " + "; ".join(traffic_errors[:5]))

    # ---- what Prometheus sees ----
    names = [n["name"] for n in nodes]

    def every_node(expr, ok, what):
        """Waits until expr has one series per node and ok(value) holds for each."""
        def cond():
            no_traffic_errors()
            v = prom.by_node(expr)
            bad = {k: x for k, x in v.items() if not ok(x)}
            if sorted(v) != names or bad:
                return f"{expr} = {v}"
            return True
        wait_for(f"{what} ({expr})", 60, cond, 0.5)
        say(f"ok: {what}: {prom.by_node(expr)}")

    every_node('up{job="distrod"}', lambda x: x == 1, "every target up")
    targets = prom.get("/api/v1/targets")["activeTargets"]
    bad = [(t["labels"].get("node"), t["health"], t.get("lastError")) for t in targets
           if t["health"] != "up"]
    if len(targets) != NODES or bad:
        fail(f"targets: {len(targets)} active, unhealthy: {bad}")

    every_node("distrod_instances", lambda x: x == INSTANCES,
               f"every node holds the {INSTANCES} instances registered")
    every_node("distrod_services", lambda x: x == 6, "every node holds the 6 services")
    every_node("distrod_connections_max", lambda x: x == 10000, "the --conns-max gauge")
    every_node("distrod_instances_max", lambda x: x == 16 << 20, "the --instances-max gauge")
    every_node("distrod_peer_backlog_bytes_max", lambda x: x == 64 << 20,
               "the --peer-backlog gauge")

    every_node(f'sum by (node) (rate(distrod_operations_total{{op="heartbeat"}}{RATE}))',
               lambda x: x > 0, "heartbeat rate > 0 on every node")
    every_node(f'sum by (node) (rate(distrod_operations_total{{op="list"}}{RATE}))',
               lambda x: x > 0, "list rate > 0 on every node")
    every_node(f"sum by (node) (rate(distrod_operations_total{RATE}))",
               lambda x: x > 0, "operations rate > 0 on every node")

    # Peer health: each node lists the 3 members, itself included, and sees
    # its 2 peers (the members other than its own peer address) UP and READY.
    for metric, want in (("distrod_peer_member_health", 2), ("distrod_peer_member_ready", 1)):
        def peers_ok(metric=metric, want=want):
            seen = {}
            for r in prom.query(metric):
                m = r["metric"]
                if m["member"] != m["peer"] and float(r["value"][1]) == want:
                    seen.setdefault(m["node"], set()).add(m["member"])
            others = {n["name"]: {x["peer"] for x in nodes if x is not n} for n in nodes}
            return True if seen == others else f"{metric} == {want} for peers: {seen}"
        wait_for(f"each node sees its 2 peers at {metric} == {want}", 30, peers_ok, 0.5)
        say(f"ok: each node sees its 2 peers with {metric} == {want}")
    every_node("count by (node) (distrod_peer_member_health == 2)", lambda x: x == 3,
               "3 members UP in each node's view (itself included)")
    every_node("distrod_peer_ready", lambda x: x == 1, "every node READY")
    every_node("distrod_peer_quorum", lambda x: x == 1, "every node has a quorum")
    every_node("distrod_peer_members", lambda x: x == 3, "3 members in cluster.conf")
    every_node("sum by (node) (distrod_peer_member_slots)", lambda x: x == SLOTS,
               "every slot owned in each node's map")
    every_node("min by (node) (distrod_peer_member_slots)", lambda x: x > 0,
               "every member owns slots")

    # Replication: records flow, none dropped, lag p99 finite and bounded.
    every_node(f"rate(distrod_peer_sync_records_in_total{RATE})", lambda x: x > 0,
               "sync records arriving on every node")
    every_node("distrod_peer_sync_dropped_total", lambda x: x == 0, "no sync record dropped")
    lag = ("histogram_quantile(0.99, sum by (le, node) "
           f"(rate(distrod_replication_lag_seconds_bucket{RATE})))")
    every_node(lag, lambda x: math.isfinite(x) and 0 < x <= LAG_BOUND_S,
               f"replication lag p99 finite and within {LAG_BOUND_S} s")
    every_node(f"rate(distrod_replication_lag_seconds_count{RATE})", lambda x: x > 0,
               "lag observations on every node")

    # ---- the rules file, loaded into this Prometheus ----
    groups = prom.get("/api/v1/rules")["groups"]
    loaded = {g["name"]: g for g in groups}
    if set(loaded) != {"distrod.recording", "distrod.alerts"}:
        fail(f"rule groups loaded: {sorted(loaded)}")
    for g in groups:
        for r in g["rules"]:
            if r.get("health") not in ("ok", "unknown") or r.get("lastError"):
                fail(f"rule {r['name']}: health {r.get('health')} {r.get('lastError')}")
    for r in loaded["distrod.recording"]["rules"]:
        # Every recording rule evaluates to one series per node: the
        # series it reads exist on a real cluster, under the names it uses.
        every_node(f"group by (instance) ({r['name']})", lambda x: True,
                   f"recording rule {r['name']} has a series per node")
    every_node("distrod:peer_members_up:count", lambda x: x == 3, "recorded members UP")
    every_node("distrod:instances:ratio", lambda x: 0 < x < 0.01, "recorded instances ratio")
    every_node("distrod:replication_lag_seconds:p99_5m",
               lambda x: math.isfinite(x) and 0 < x <= LAG_BOUND_S, "recorded lag p99")
    # Rules with a `for` cannot fire yet, but any alert condition true on a
    # healthy cluster shows as pending. One exception: a single repair arms
    # DistrodPersistentRepairs (pending) for 10 minutes, and a verify round
    # racing a sync in flight may cause one; it fires only after 30 minutes
    # of repairs, so pending it is allowed, firing it is not.
    active = [a for a in prom.query("ALERTS")
              if not (a["metric"].get("alertname") == "DistrodPersistentRepairs"
                      and a["metric"].get("alertstate") == "pending")]
    if active:
        fail("alerts active on a healthy cluster: " +
             "; ".join(f"{a['metric'].get('alertname')} {a['metric']}" for a in active))
    say(f"ok: {sum(len(g['rules']) for g in groups)} rules loaded and healthy, no alert active")

    # ---- names the rules and the dashboard use exist ----
    exported = set(prom.get("/api/v1/label/__name__/values"))
    with open(args.rules) as f:
        used = set(NAME_RE.findall(f.read()))
    exprs = dashboard_exprs(args.dashboard)
    for _, e in exprs:
        used |= set(NAME_RE.findall(e))
    # Counters these nodes export but that are not in the scrape set only
    # when the code paths did not run would still be exported (every
    # counter is, from start): so the comparison is exact.
    missing = sorted(used - exported)
    if missing:
        fail(f"names used by the rules or the dashboard that distrod does not export: {missing}")
    say(f"ok: all {len(used)} distrod_* names of the rules and the dashboard are exported")
    empty = [(title, e) for title, e in exprs if not prom.query(e)]
    if empty:
        fail("dashboard expressions without data on a real cluster: " +
             "; ".join(f"{t}: {e}" for t, e in empty))
    say(f"ok: all {len(exprs)} dashboard expressions return data")

    stop_traffic.set()
    t.join(30)
    no_traffic_errors()

    # ---- a member dies: the rules see it in real data ----
    # kill -9 of node 2: within --peer-down (900 ms) the others see it DOWN,
    # Prometheus's scrapes of it fail, and DistrodMemberDown (from n0 and n1,
    # about n2's peer address) and DistrodTargetDown (n2) go pending, as
    # they would on a real outage (they fire after their 1m).
    victim = nodes[2]
    vc = next(c for c in children if c["name"] == "distrod node 2")
    vc["stopped"] = True
    vc["proc"].kill()
    vc["proc"].wait()
    say("killed node 2 (SIGKILL)")
    want = {("DistrodMemberDown", "n0", victim["peer"]),
            ("DistrodMemberDown", "n1", victim["peer"]),
            ("DistrodTargetDown", "n2", None)}

    def down_alerts():
        got = {(a["metric"].get("alertname"), a["metric"].get("node"), a["metric"].get("member"))
               for a in prom.query('ALERTS{alertname=~"DistrodMemberDown|DistrodTargetDown"}')}
        return True if got == want else f"alerts {sorted(got, key=str)}"

    wait_for("DistrodMemberDown from n0 and n1 and DistrodTargetDown for n2", 30, down_alerts, 0.5)
    say("ok: the member and target alerts are active for the killed node")
    every_node_of = {n["name"] for n in nodes[:2]}
    health = {r["metric"]["node"]: float(r["value"][1]) for r in prom.query(
        f'distrod_peer_member_health{{member="{victim["peer"]}",node!="n2"}}')}
    if set(health) != every_node_of or any(v != 0 for v in health.values()):
        fail(f"health of the killed member as the others see it: {health}")

    # Clean stops: SIGTERM, exit 0 (ASan's leak check runs there).
    for c in children:
        if c.get("stopped"):
            continue
        c["stopped"] = True
        c["proc"].send_signal(signal.SIGTERM)
    for c in children:
        if c is vc:
            continue
        try:
            rc = c["proc"].wait(20)
        except subprocess.TimeoutExpired:
            fail(f"{c['name']} did not stop within 20 s of SIGTERM")
        if rc != 0:
            fail(f"{c['name']} exited with {rc} after SIGTERM")


if __name__ == "__main__":
    sys.exit(main())
