#!/usr/bin/env python3
"""distrod's own fault campaign (docs/chaos.md).

What it does. Builds N network namespaces (3 by default), each with two
veth interfaces: c0 on a "client" bridge the campaign reaches every node
through, p0 on a "peer" bridge that cluster.conf names. One real distrod runs
in each namespace on the default ports (each namespace has its own stack, so
no two nodes can share a port). Faults touch only what a scenario names - a
process (kill -9, SIGSTOP) or a peer interface/route (partition, one-way
drop, one cut link, packet loss, netem) - so the clients can still reach
every node and fail over, as an operator's clients would.

Who does what. K client threads own the instances (ip:port in the
benchmarking range 198.18.0.0/15, never probed): they register each once,
beat it every interval through the nodes in turn (a failed or timed-out
request - a dead, stopped or answering-503 node - moves to the next node;
a node that timed out is skipped by that client for a second), and now and
then deregister one (recording when the delete was acknowledged) and
register a fresh one in its place: a name is never used twice, so any
listing of a deleted name after its delete is a resurrection. One sampler
thread per node asks /cluster (READY) and then lists every service through
the Nacos API, several times a second, and checks each sample at once.

Invariants (each sample of a READY node):
 1. live instances are listed: registered (acknowledged) at least GRACE ago,
    no delete sent yet, a beat acknowledged within 2 intervals (less than
    the delete timeout, so a lagging client never counts against distrod);
 2. no acknowledged delete comes back: deleted (acknowledged) at least
    GRACE ago, the name is not listed;
 3. convergence: after each fault ends, the time until every node answers
    READY with no live instance missing and no deleted one listed, bounded;
 4. no crash: every process the campaign did not kill is alive; logs carry
    no sanitizer report;
 5. RSS bounded: VmRSS of each node stays under factor x its warm value
    plus a slack.
Exemptions are the AP promise, not leniency: an event (a registration or a
delete acknowledged) that happened while a fault cut the nodes of the
scenario's "affected" set off from the rest may be missing from those nodes
until the fault ends plus the heal grace (peer-down + 2 verify rounds +
GRACE). Instances that existed before a fault get no exemption on any
READY node at any time: that is what catches a resumed node deleting its own
live instances or two nodes across a cut link expiring each other's. A node
that just became READY after a (re)start is exempt for GRACE.

Bounds: everything is bounded in time (each request's timeout, each wait,
each scenario) and in memory (the violation examples kept per scenario).
Needs root, iproute2, network namespaces; optional iptables (one-way drop,
loss), tc netem or else nfq_netem with iptables' NFQUEUE target
(delay/reorder/duplicate), libfaketime (clock skew), each scenario skipped
with the reason when its tool or kernel feature is missing. Exit 0 all ran
scenarios passed, 1 a violation, 77 skipped.
"""

import argparse
import fcntl
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

SKIP = 77
NET_PREFIX = "10.232"  # per run: client bridge 10.232.<2k+1>.0/24 (host side .254), peer <2k+2>
# Held while a run picks its subnets and gives the host its address: runs from other worktrees
# on the same machine (tools/test, ctest -L chaos) must never share one (see Net).
NET_LOCK = "/tmp/distro-netns.lock"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
EXAMPLES_MAX = 8  # violation examples kept per scenario and kind
# nfq_netem (delay/reorder/duplicate without sch_netem): its queue in each node's namespace
# (queues are per namespace), and the mark its copies carry so the rule lets them pass.
NFQ_QUEUE = 7
NFQ_MARK = "0x4e51"
NFQ_RULE = (f"OUTPUT -o p0 -m mark ! --mark {NFQ_MARK} -j NFQUEUE --queue-num {NFQ_QUEUE} "
            "--queue-bypass")
# Counters read from each node's /metrics around every scenario (docs/operations.md):
# what distrod itself did about the fault, beside what the samples saw.
METRICS = ("distrod_expired_total", "distrod_blind_deletes_total",
           "distrod_expiry_overridden_total", "distrod_stale_requests_dropped_total",
           "distrod_stalls_total", "distrod_takeover_adopted_total",
           "distrod_writes_refused_total",
           "distrod_repair_refed_total", "distrod_repair_forgotten_total")

ALL_SCENARIOS = [
    "kill9", "pause_short", "pause_long", "partition", "oneway", "cut_link",
    "loss", "delay", "reorder", "duplicate", "clock_skew", "rolling_restart",
    "membership",
]

PROFILES = {
    # ctest: a few hundred instances, the cluster tests' timers
    "short": dict(instances=150, workers=6, services=2, interval=500,
                  unhealthy=1500, delete=3000, peer_ping=50, peer_suspect=300,
                  peer_down=900, verify=200, startup_wait=1000, fault_ms=4000,
                  sample_ms=200, churn_ms=1500, conv_limit_ms=15000,
                  settle_ms=1500, timeout_ms=400, rss_factor=2.0,
                  rss_slack_mb=96),
    # tools/chaos: thousands of instances, production-like timings
    "long": dict(instances=3000, workers=100, services=10, interval=5000,
                 unhealthy=15000, delete=30000, peer_ping=100,
                 peer_suspect=500, peer_down=2000, verify=1000,
                 startup_wait=3000, fault_ms=20000, sample_ms=400,
                 churn_ms=10000, conv_limit_ms=60000, settle_ms=5000,
                 timeout_ms=1000, rss_factor=1.5, rss_slack_mb=64),
}


def now():
    return time.monotonic()


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"`{cmd}` failed ({r.returncode}): {r.stdout.strip()}")
    return r.returncode


def log(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Skip(Exception):
    pass


# ---------------------------------------------------------------- network


class Net:
    """Namespaces chaos<tag>n<i>, bridges kc<tag> (client) and kp<tag> (peer).

    Subnets are picked per run, not fixed: two campaigns on one machine (two worktrees'
    tools/test at once) that both gave the host 10.232.1.254/24 would have the host route to
    the first run's bridge only, so the second run's clients and samplers would talk to the
    first run's nodes - the same instance names, so each run sees the other's deletes as its
    live instances missing and the other's registrations as its deletes undone. Under
    NET_LOCK the run takes the first pair of /24s no host address or route uses."""

    def __init__(self, count):
        self.tag = str(os.getpid() % 100000)
        self.count = count
        self.made = False
        self.client_net = self.peer_net = None

    def ns(self, i):
        return f"chaos{self.tag}n{i}"

    def client_ip(self, i):
        return f"{self.client_net}.{i + 1}"

    def peer_ip(self, i):
        return f"{self.peer_net}.{i + 1}"

    @staticmethod
    def used_nets():
        r = subprocess.run("ip -o -4 addr show; ip -4 route show table all", shell=True,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return set(re.findall(r"\b(\d+\.\d+\.\d+)\.\d+", r.stdout))

    def up(self):
        t = self.tag
        with open(NET_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            used = self.used_nets()
            for k in range(0, 127):
                c, p = f"{NET_PREFIX}.{2 * k + 1}", f"{NET_PREFIX}.{2 * k + 2}"
                if c not in used and p not in used:
                    self.client_net, self.peer_net = c, p
                    break
            else:
                raise RuntimeError(f"no free pair of /24s in {NET_PREFIX}.0.0/16")
            sh(f"ip link add kc{t} type bridge && ip link set kc{t} up && "
               f"ip addr add {self.client_net}.254/24 dev kc{t}")
            self.made = True
        sh(f"ip link add kp{t} type bridge && ip link set kp{t} up")
        for i in range(self.count):
            ns = self.ns(i)
            sh(f"ip netns add {ns} && ip -n {ns} link set lo up")
            sh(f"ip link add vc{t}x{i} type veth peer name c0 netns {ns} && "
               f"ip link set vc{t}x{i} master kc{t} up && "
               f"ip -n {ns} addr add {self.client_ip(i)}/24 dev c0 && "
               f"ip -n {ns} link set c0 up")
            sh(f"ip link add vp{t}x{i} type veth peer name p0 netns {ns} && "
               f"ip link set vp{t}x{i} master kp{t} up && "
               f"ip -n {ns} addr add {self.peer_ip(i)}/24 dev p0 && "
               f"ip -n {ns} link set p0 up")

    def down(self):
        for i in range(self.count):
            sh(f"ip netns del {self.ns(i)} 2>/dev/null", check=False)
        sh(f"ip link del kc{self.tag} 2>/dev/null", check=False)
        sh(f"ip link del kp{self.tag} 2>/dev/null", check=False)

    def in_ns(self, i, cmd, check=True):
        return sh(f"ip netns exec {self.ns(i)} {cmd}", check)


def need_privileges():
    if os.geteuid() != 0:
        raise Skip("needs root: it creates network namespaces, bridges and veth pairs")
    try:
        with open("/proc/self/status") as f:
            eff = next(int(l.split()[1], 16) for l in f if l.startswith("CapEff:"))
        if not (eff >> 12 & 1 and eff >> 21 & 1):  # CAP_NET_ADMIN, CAP_SYS_ADMIN
            raise Skip("root without CAP_NET_ADMIN and CAP_SYS_ADMIN: cannot create namespaces")
    except (OSError, StopIteration):
        pass
    if shutil.which("ip") is None:
        raise Skip("iproute2's ip is not on PATH (tools/deps installs it)")
    if not os.path.exists("/proc/self/ns/net"):
        raise Skip("the kernel has no network namespaces (CONFIG_NET_NS)")


# ------------------------------------------------------------------ nodes


class Node:
    def __init__(self, cl, i):
        self.cl, self.i = cl, i
        self.proc = None
        self.expect = "down"  # up | killed | stopped | down
        self.skew = None
        self.ready_seen = None  # monotonic time of the first READY sample since (re)start
        self.rss_base = None
        self.rss_max = 0
        self.starts = 0

    def start(self, skew=None):
        cl, i = self.cl, self.i
        p = cl.p
        self.skew = skew
        env = ""
        if skew:
            # libfaketime directly (not the faketime wrapper) so the pid stays distrod's;
            # ASan would refuse a preloaded library ahead of its runtime.
            env = (f"env LD_PRELOAD={FAKETIME_LIB} FAKETIME='{skew}' DONT_FAKE_MONOTONIC=1 "
                   f"ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 ")
        args = (f"{env}{cl.distrod} --bind {cl.net.client_ip(i)} --port 8850 "
                f"--http-bind {cl.net.client_ip(i)} --http-port 8851 --nacos-port 8848 "
                f"--workers 2 --cluster-conf {cl.dir}/cluster.conf "
                f"--cluster-secret-file {cl.dir}/secret --peer-port 7848 "
                f"--peer-ping {p['peer_ping']} --peer-suspect {p['peer_suspect']} "
                f"--peer-down {p['peer_down']} --verify-interval {p['verify']} "
                f"--startup-wait {p['startup_wait']}")
        logf = open(f"{cl.dir}/node{i}.log", "a")
        logf.write(f"==== start {self.starts} skew={skew} at {time.strftime('%H:%M:%S')}\n")
        logf.flush()
        self.ready_seen = None
        self.rss_base = None
        self.starts += 1
        self.proc = subprocess.Popen(
            f"exec ip netns exec {cl.net.ns(i)} {args}", shell=True,
            stdout=logf, stderr=subprocess.STDOUT, preexec_fn=child_setup)
        logf.close()
        self.expect = "up"

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill9(self):
        self.expect = "killed"
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop_gracefully(self):
        self.expect = "down"
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.cl.violation(None, "crash", f"node{self.i} ignored SIGTERM for 10 s")
            self.signal(signal.SIGKILL)
            self.proc.wait(10)

    def rss_kb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None


def child_setup():
    """A node's own session (signals go to it alone), killed if the campaign dies (ctest's
    timeout): PR_SET_PDEATHSIG survives the execs of ip and env."""
    os.setsid()
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Http:
    """One keep-alive connection per node, owned by one thread."""

    def __init__(self, cl, timeout_s):
        self.cl, self.timeout_s = cl, timeout_s
        self.conns = {}

    def request(self, i, method, path, body=None):
        """(status, body bytes) or None on a transport error or timeout."""
        c = self.conns.get(i)
        if c is None:
            c = http.client.HTTPConnection(self.cl.net.client_ip(i), 8848, timeout=self.timeout_s)
            self.conns[i] = c
        try:
            hdrs = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return r.status, data
        except (OSError, http.client.HTTPException):
            c.close()  # never reuse: a late answer would belong to the wrong request
            del self.conns[i]
            return None

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()


# --------------------------------------------------------------- workload


class Inst:
    __slots__ = ("key", "ip", "port", "svc", "reg_ack", "last_ack", "beat_since",
                 "del_sent", "del_ack", "del_node", "next_beat")

    def __init__(self, k, services):
        self.ip = f"198.18.{k // 250}.{k % 250 + 1}"
        self.port = 8080
        self.key = f"{self.ip}#{self.port}"
        self.svc = f"chaos{k % services}"
        self.reg_ack = None
        self.last_ack = None
        self.beat_since = None  # start of the current run of acked beats (no gap near expiry)
        self.del_sent = None
        self.del_ack = None
        self.del_node = None  # the node that acknowledged the delete
        self.next_beat = 0.0


class Client(threading.Thread):
    def __init__(self, cl, w):
        super().__init__(daemon=True, name=f"client{w}")
        self.cl, self.w = cl, w
        self.rng = random.Random(cl.seed * 1000 + w)
        self.http = Http(cl, cl.p["timeout_ms"] / 1000)
        self.insts = []
        self.rr = w
        self.avoid = {}  # node -> monotonic time until which this client skips it
        self.requests = self.failovers = self.beats_failed = self.late_beats = 0
        self.acked_by = None  # the node that acknowledged the last request sent
        self.late_max = 0.0  # s: how far behind its schedule this client sent a beat

    def meta(self):
        p = self.cl.p
        return json.dumps({"preserved.heart.beat.interval": str(p["interval"]),
                           "preserved.heart.beat.timeout": str(p["unhealthy"]),
                           "preserved.ip.delete.timeout": str(p["delete"])})

    def send(self, method, path, body=None):
        """Tries each serving node once from the next in turn: True when acknowledged."""
        serving = self.cl.serving  # one list: membership replaces it (never edits it) meanwhile
        n = len(serving)
        for attempt in range(n):
            i = serving[(self.rr + attempt) % n]
            if self.avoid.get(i, 0) > now() and attempt < n - 1:
                continue
            self.requests += 1
            r = self.http.request(i, method, path, body)
            if r is not None and r[0] == 200:
                self.rr = (self.rr + attempt + 1) % n
                self.acked_by = i
                return True
            self.failovers += 1
            if r is None:
                self.avoid[i] = now() + 1.0
        self.rr += 1
        return False

    def register(self, inst):
        q = urllib.parse.urlencode({"serviceName": inst.svc, "ip": inst.ip, "port": inst.port,
                                    "ephemeral": "true", "metadata": self.meta()})
        if self.send("POST", "/nacos/v1/ns/instance", q):
            self.acked(inst, now())

    def beat(self, inst):
        beat = json.dumps({"serviceName": inst.svc, "ip": inst.ip, "port": inst.port,
                           "cluster": "DEFAULT", "metadata": json.loads(self.meta()),
                           "scheduled": True})
        q = urllib.parse.urlencode({"serviceName": inst.svc, "ip": inst.ip,
                                    "port": inst.port, "beat": beat})
        if self.send("PUT", f"/nacos/v1/ns/instance/beat?{q}"):
            self.acked(inst, now())
        else:
            self.beats_failed += 1

    def acked(self, inst, t):
        """A register or beat acknowledged at t. After a gap in which the owner may rightly
        have expired the instance (no acked beat for delete - interval), a beat re-creates
        it: a new registration as far as replication goes."""
        gap_s = (self.cl.p["delete"] - self.cl.p["interval"]) / 1000
        if inst.last_ack is None or t - inst.last_ack > gap_s:
            inst.beat_since = t
        inst.reg_ack = inst.reg_ack or t
        inst.last_ack = t

    def deregister(self, inst):
        inst.del_sent = now()
        q = urllib.parse.urlencode({"serviceName": inst.svc, "ip": inst.ip,
                                    "port": inst.port, "ephemeral": "true"})
        for _ in range(20):  # bounded: 20 rounds over every node
            if self.send("DELETE", f"/nacos/v1/ns/instance?{q}"):
                inst.del_ack = now()
                inst.del_node = self.acked_by
                return
            if self.cl.stopping.is_set():
                return

    def run(self):
        cl, p = self.cl, self.cl.p
        ival = p["interval"] / 1000
        for inst in self.insts:
            self.register(inst)
            inst.next_beat = now() + ival * self.rng.random()
        next_churn = now() + p["churn_ms"] / 1000 * (1 + self.rng.random())
        while not cl.stopping.is_set():
            t = now()
            due = [x for x in self.insts if x.next_beat <= t]
            for inst in due:
                if cl.stopping.is_set():
                    break
                late = now() - inst.next_beat
                self.late_max = max(self.late_max, late)
                self.late_beats += late > ival
                self.beat(inst)
                inst.next_beat = max(inst.next_beat + ival, now())
            if cl.churn and now() >= next_churn and self.insts:
                old = self.insts.pop(self.rng.randrange(len(self.insts)))
                cl.dead.append(old)
                self.deregister(old)
                fresh = cl.new_inst()
                self.register(fresh)
                fresh.next_beat = now() + ival
                self.insts.append(fresh)
                next_churn = now() + p["churn_ms"] / 1000 * (0.5 + self.rng.random())
            nxt = min((x.next_beat for x in self.insts), default=now() + 0.05)
            time.sleep(max(0.0, min(0.05, nxt - now())))
        self.http.close()


# ---------------------------------------------------------------- sampler

INSTANCE_ID = re.compile(rb'"instanceId":"([0-9.]+#[0-9]+)#')
# For the report only (a violation's example says whether the instance was listed unhealthy):
# hosts[] fields come in docs/nacos.md's order, instanceId ... healthy.
HEALTH = re.compile(rb'"instanceId":"([0-9.]+#[0-9]+)#[^{}]*?"healthy":(true|false)')


class Sample:
    __slots__ = ("t0", "t1", "ready", "missing", "stale")


class Sampler(threading.Thread):
    def __init__(self, cl, i):
        super().__init__(daemon=True, name=f"sampler{i}")
        self.cl, self.i = cl, i
        self.http = Http(cl, max(0.5, cl.p["timeout_ms"] / 1000))
        self.last = None  # the latest Sample (convergence)
        self.unhealthy = set()  # keys the latest listing showed unhealthy
        self.count = 0

    def take(self):
        cl, i = self.cl, self.i
        t0 = now()
        r = self.http.request(i, "GET", "/cluster")
        if r is None or r[0] != 200:
            return None
        try:
            ready = bool(json.loads(r[1]).get("ready"))
        except ValueError:
            return None
        listed = set()
        self.unhealthy = set()
        for s in range(cl.p["services"]):
            q = urllib.parse.urlencode({"serviceName": f"chaos{s}", "healthyOnly": "false"})
            r = self.http.request(i, "GET", f"/nacos/v1/ns/instance/list?{q}")
            if r is None or r[0] != 200:
                return None
            listed.update(m.decode() for m in INSTANCE_ID.findall(r[1]))
            self.unhealthy.update(k.decode() for k, h in HEALTH.findall(r[1]) if h == b"false")
        s = Sample()
        s.t0, s.t1, s.ready = t0, now(), ready
        s.missing, s.stale = cl.check(i, s, listed)
        return s

    def run(self):
        period = self.cl.p["sample_ms"] / 1000
        while not self.cl.stopping.is_set():
            start = now()
            node = self.cl.nodes[self.i]
            if node.expect == "up" and self.i in self.cl.serving:
                s = self.take()
                if s is not None:
                    self.count += 1
                    self.last = s
            time.sleep(max(0.0, period - (now() - start)))
        self.http.close()


# ---------------------------------------------------------------- cluster


class Fault:
    def __init__(self, name, affected):
        self.name, self.affected = name, set(affected)
        self.begin = now()
        self.end = None


class Result:
    def __init__(self, name):
        self.name = name
        self.status = "ran"  # ran | skipped | failed
        self.reason = ""
        self.convergence_ms = []
        self.windows = []  # "begin-end" of each fault, UTC
        self.metrics = {}  # counter -> increase over the scenario, all nodes
        self.counts = {}  # kind -> violations (samples)
        self.keys = {}  # kind -> the instances they were about
        self.examples = {}
        self.detail = ""


class Cluster:
    def __init__(self, args, p):
        self.args, self.p = args, p
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.distrod = args.distrod
        self.n = args.nodes
        self.dir = args.dir
        self.net = Net(max(self.n, 5) if "membership" in args.scenarios else self.n)
        self.nodes = [Node(self, i) for i in range(self.net.count)]
        self.serving = list(range(self.n))  # members clients and samplers use
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.next_k = 0
        self.dead = []  # deregistered instances (append-only)
        self.seen_after_delete = {}  # key -> [(node, first sample listing it after its delete)]
        self.faults = []
        self.result = None  # the scenario running; violations count against it
        self.results = []
        self.churn = True
        self.grace = 1.0  # s: a registration's replication, a (re)started node's READY
        self.heal_grace = (p["peer_down"] + 2 * p["verify"]) / 1000 + self.grace
        self.clients = []
        self.samplers = []
        self.nfq = []  # nfq_netem processes running (stopped at the end of their fault)
        self.t_start, self.t_start_wall = now(), time.time()

    # -- bookkeeping

    def new_inst(self):
        with self.lock:
            k = self.next_k
            self.next_k += 1
        return Inst(k, self.p["services"])

    def wall(self, t):
        """A monotonic time as UTC wall clock, to find it in the nodes' logs."""
        w = self.t_start_wall + (t - self.t_start)
        return time.strftime("%H:%M:%S", time.gmtime(w)) + f".{int(w * 1000) % 1000:03d}"

    def violation(self, node, kind, text, key=None):
        r = self.result
        if r is None:
            r = self.results_setup
        with self.lock:
            r.counts[kind] = r.counts.get(kind, 0) + 1
            if key is not None:
                r.keys.setdefault(kind, set()).add(key)
            ex = r.examples.setdefault(kind, [])
            if len(ex) < EXAMPLES_MAX:
                who = "" if node is None else f"node{node} "
                ex.append(f"{who}{text}")

    def exempt(self, i, t_event, t_sample):
        """Node i may not know an event at t_event yet (see the file comment)."""
        for f in self.faults:
            end = (f.end if f.end is not None else t_sample) + self.heal_grace
            if i in f.affected and f.begin - self.grace <= t_event <= end and t_sample <= end:
                return True
        return False

    def check(self, i, s, listed):
        """Invariants 1 and 2 on one sample; returns (missing, stale) ignoring exemptions."""
        node = self.nodes[i]
        if not s.ready:
            return None, None
        if node.ready_seen is None:
            node.ready_seen = s.t0
        fresh = s.t0 < node.ready_seen + self.grace
        ival = self.p["interval"] / 1000
        missing = stale = 0
        for c in self.clients:
            for x in list(c.insts):
                if (x.reg_ack is None or x.beat_since > s.t0 - self.grace or
                        x.last_ack < s.t0 - 2 * ival or
                        (x.del_sent is not None and x.del_sent <= s.t1)):
                    continue
                if x.key in listed:
                    continue
                missing += 1
                if not fresh and not self.exempt(i, x.beat_since, s.t0):
                    self.violation(i, "live_missing",
                                   f"{x.key} ({x.svc}) absent at {self.wall(s.t0)}; "
                                   f"registered {self.wall(x.reg_ack)}, beaten since "
                                   f"{self.wall(x.beat_since)}, last beat acked "
                                   f"{(s.t0 - x.last_ack) * 1000:.0f} ms before", x.key)
        for x in list(self.dead):
            if x.del_ack is None or x.del_ack > s.t0 - self.grace or x.key not in listed:
                continue
            stale += 1
            with self.lock:  # the listings after the delete, exempt or not: how it came back
                seen = self.seen_after_delete.setdefault(x.key, [])
                if len(seen) < 6 and not any(n == i for n, _ in seen):
                    seen.append((i, s.t0))
            if not fresh and not self.exempt(i, x.del_ack, s.t0):
                self.violation(i, "delete_undone",
                               f"{x.key} ({x.svc}) listed "
                               f"{'unhealthy' if x.key in self.samplers[i].unhealthy else 'healthy'}"
                               f" at {self.wall(s.t0)}; "
                               f"delete acked {self.wall(x.del_ack)} by node{x.del_node}; "
                               f"first listed after it: " + ", ".join(
                                   f"node{n} {self.wall(t)}"
                                   for n, t in self.seen_after_delete.get(x.key, [])), x.key)
        return missing, stale

    # -- life cycle

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(f"{self.dir}/secret", "w") as f:
            f.write(f"chaos-campaign-secret-{self.seed:08d}\n")
        self.net.up()  # picks the subnets cluster.conf names
        self.write_conf(range(self.n))
        self.t_start, self.t_start_wall = now(), time.time()
        for i in range(self.n):
            self.nodes[i].start()
        self.wait_ready(range(self.n), 30)

    def write_conf(self, members):
        tmp = f"{self.dir}/cluster.conf.tmp"
        with open(tmp, "w") as f:
            for i in members:
                f.write(f"{self.net.peer_ip(i)}:7848\n")
        os.replace(tmp, f"{self.dir}/cluster.conf")

    def cluster_view(self, i, h):
        r = h.request(i, "GET", "/cluster")
        if r is None or r[0] != 200:
            return None
        try:
            return json.loads(r[1])
        except ValueError:
            return None

    def wait_ready(self, which, limit_s):
        """Every node of `which` READY and seeing every serving member UP and READY."""
        h = Http(self, 0.5)
        deadline = now() + limit_s
        try:
            while now() < deadline:
                ok = True
                for i in which:
                    v = self.cluster_view(i, h)
                    if v is None or not v.get("ready"):
                        ok = False
                        break
                    up = [m for m in v.get("members", []) if m.get("health") == "UP" and m.get("ready")]
                    if len(up) < len(self.serving):
                        ok = False
                        break
                if ok:
                    return True
                time.sleep(0.05)
        finally:
            h.close()
        raise RuntimeError(f"nodes {list(which)} not all READY with every member UP in {limit_s} s")

    def start_workload(self):
        for w in range(self.p["workers"]):
            self.clients.append(Client(self, w))
        for k in range(self.p["instances"]):
            self.clients[k % len(self.clients)].insts.append(self.new_inst())
        for c in self.clients:
            c.start()
        deadline = now() + 60
        while now() < deadline:
            if all(x.reg_ack is not None for c in self.clients for x in c.insts):
                break
            time.sleep(0.1)
        for i in range(self.n):
            s = Sampler(self, i)
            self.samplers.append(s)
            s.start()

    def converge(self, since, limit_s):
        """Seconds from `since` until every serving node's sample is clean; None if not in limit."""
        deadline = since + limit_s
        while now() < deadline:
            ok, latest = True, since
            for i in self.serving:
                s = self.samplers[i].last if i < len(self.samplers) else None
                if (s is None or s.t0 < since or not s.ready or s.missing or s.stale or
                        self.nodes[i].expect != "up"):
                    ok = False
                    break
                latest = max(latest, s.t0)
            if ok:
                return latest - since
            time.sleep(0.02)
        return None

    def monitor_once(self):
        """Invariants 4 and 5."""
        p = self.p
        for n in self.nodes:
            if n.expect == "down" or n.proc is None:
                continue
            rc = n.proc.poll()
            if rc is not None and n.expect in ("up", "stopped"):
                self.violation(n.i, "crash", f"node{n.i} exited with {rc} (see node{n.i}.log)")
                n.expect = "down"
                continue
            if n.expect != "up":
                continue
            kb = n.rss_kb()
            if kb is None:
                continue
            n.rss_max = max(n.rss_max, kb)
            if n.rss_base is None and n.ready_seen is not None and now() > n.ready_seen + 2:
                n.rss_base = kb
            if n.rss_base is not None:
                bound = n.rss_base * p["rss_factor"] + p["rss_slack_mb"] * 1024
                if kb > bound:
                    self.violation(n.i, "rss", f"VmRSS {kb} kB > bound {bound:.0f} kB "
                                   f"(warm {n.rss_base} kB)")
                    n.rss_base = kb  # report each growth step once

    def client_counts(self):
        cs = self.clients
        return {"client_failovers": sum(c.failovers for c in cs),
                "client_beats_failed": sum(c.beats_failed for c in cs),
                "client_beats_late": sum(c.late_beats for c in cs)}

    def metrics(self):
        """Each METRICS counter per (node, name[/kind]); nodes that do not answer are left out."""
        h = Http(self, 1.0)
        total = {}
        for i in self.serving:
            if self.nodes[i].expect != "up":
                continue
            r = h.request(i, "GET", "/metrics")
            if r is None or r[0] != 200:
                continue
            for line in r[1].decode(errors="replace").splitlines():
                name = line.split("{", 1)[0].split(" ", 1)[0]
                if name not in METRICS:
                    continue
                kind = re.search(r'kind="([a-z_]+)"', line)
                key = f"{name}/{kind.group(1)}" if kind else name
                try:
                    total[(i, key)] = total.get((i, key), 0) + float(line.rsplit(" ", 1)[1])
                except ValueError:
                    pass
        h.close()
        return total

    def hold(self, seconds):
        end = now() + seconds
        while now() < end:
            self.monitor_once()
            time.sleep(min(0.1, max(0.0, end - now())))

    def stop_all(self):
        self.stopping.set()
        for p in self.nfq:  # a fault the campaign broke off: its programs go too
            if p.poll() is None:
                p.kill()
                p.wait(5)
        for t in self.clients + self.samplers:
            t.join(15)
        for n in self.nodes:
            if n.proc and n.proc.poll() is None:
                if n.expect == "stopped":
                    n.signal(signal.SIGCONT)
                n.signal(signal.SIGTERM)
                try:
                    n.proc.wait(10)
                except subprocess.TimeoutExpired:
                    n.signal(signal.SIGKILL)
                    n.proc.wait(5)
                if n.proc.returncode not in (0, -signal.SIGTERM):
                    self.violation(n.i, "crash", f"node{n.i} exit status {n.proc.returncode} at stop")

    def sanitizer_reports(self):
        found = []
        for n in self.nodes:
            path = f"{self.dir}/node{n.i}.log"
            if not os.path.exists(path):
                continue
            with open(path, errors="replace") as f:
                for line in f:
                    if "AddressSanitizer" in line or "runtime error:" in line or "LeakSanitizer" in line:
                        found.append(f"node{n.i}: {line.strip()}")
                        break
        return found


# -------------------------------------------------------------- scenarios


def iptables_ok():
    return shutil.which("iptables") is not None


NETEM = None  # probed once: does this kernel have sch_netem?


def netem_ok():
    """True when this kernel has sch_netem: tried on lo of a throwaway namespace."""
    global NETEM
    if NETEM is None:
        ns = f"chaosprobe{os.getpid()}"
        NETEM = (shutil.which("tc") is not None and
                 sh(f"ip netns add {ns}", check=False) == 0 and
                 sh(f"ip netns exec {ns} tc qdisc add dev lo root netem delay 1ms "
                    ">/dev/null 2>&1", check=False) == 0)
        sh(f"ip netns del {ns} 2>/dev/null", check=False)
    return NETEM


NFQUEUE = None  # probed once: does iptables take an NFQUEUE rule here?


def nfqueue_ok():
    """True when iptables' NFQUEUE target works: a rule added in a throwaway namespace."""
    global NFQUEUE
    if NFQUEUE is None:
        ns = f"chaosprobe{os.getpid()}"
        NFQUEUE = (iptables_ok() and sh(f"ip netns add {ns}", check=False) == 0 and
                   sh(f"ip netns exec {ns} iptables -A {NFQ_RULE.replace('p0', 'lo')}",
                      check=False) == 0)
        sh(f"ip netns del {ns} 2>/dev/null", check=False)
    return NFQUEUE


def precheck(name, args):
    """Raises Skip, before any cluster is built, when the scenario cannot run here."""
    if name in ("oneway", "loss") and not iptables_ok():
        raise Skip("iptables is not installed (Debian package iptables; tools/deps installs it)")
    if name in ("delay", "reorder", "duplicate") and not netem_ok():
        # Without sch_netem, nfq_netem holds and copies packets from an NFQUEUE queue.
        if not args.nfq_netem or not os.access(args.nfq_netem, os.X_OK):
            raise Skip(f"{name}: this kernel has no sch_netem (tc qdisc ... netem: 'Specified "
                       "qdisc kind is unknown') and no nfq_netem was given (--nfq-netem; CMake "
                       "builds it when libnetfilter-queue-dev and libmnl-dev are installed)")
        if not nfqueue_ok():
            raise Skip(f"{name}: this kernel has no sch_netem, and iptables takes no NFQUEUE "
                       "rule (CONFIG_NETFILTER_XT_TARGET_NFQUEUE) for nfq_netem")
    if name == "clock_skew" and not os.path.exists(FAKETIME_LIB):
        raise Skip("libfaketime is not installed (Debian package faketime; tools/deps installs it)")


def run_fault(cl, name, affected, begin, end, hold_s):
    f = Fault(name, affected)
    cl.faults.append(f)
    begin()
    cl.hold(hold_s)
    end()
    f.end = now()
    return f


def after_fault(cl, f, res):
    res.windows.append(f"{cl.wall(f.begin)}-{cl.wall(f.end)}")
    c = cl.converge(f.end, cl.p["conv_limit_ms"] / 1000)
    if c is None:
        cl.violation(None, "no_convergence",
                     f"{f.name}: not converged {cl.p['conv_limit_ms']} ms after the fault ended")
    else:
        res.convergence_ms.append(round(c * 1000))


def sc_kill9(cl, res):
    v = cl.rng.randrange(cl.n)
    res.detail = f"node{v}"
    node = cl.nodes[v]
    f = run_fault(cl, "kill9", [v], node.kill9, lambda: node.start(), cl.p["fault_ms"] / 1000)
    after_fault(cl, f, res)


def pause(cl, res, ms):
    v = cl.rng.randrange(cl.n)
    res.detail = f"node{v} stopped {ms} ms"
    node = cl.nodes[v]

    def stop():
        node.expect = "stopped"
        node.signal(signal.SIGSTOP)

    def cont():
        node.signal(signal.SIGCONT)
        node.expect = "up"

    f = run_fault(cl, "pause", [v], stop, cont, ms / 1000)
    after_fault(cl, f, res)


def sc_pause_short(cl, res):
    pause(cl, res, cl.p["peer_suspect"] * 2 // 3)


def sc_pause_long(cl, res):
    pause(cl, res, cl.p["delete"] + cl.p["peer_down"] + 500)


def sc_partition(cl, res):
    v = cl.rng.randrange(cl.n)
    res.detail = f"node{v} alone (minority) vs the rest (majority)"
    f = run_fault(cl, "partition", range(cl.n),
                  lambda: cl.net.in_ns(v, "ip link set p0 down"),
                  lambda: cl.net.in_ns(v, "ip link set p0 up"), cl.p["fault_ms"] / 1000)
    after_fault(cl, f, res)


def sc_oneway(cl, res):
    v = cl.rng.randrange(cl.n)
    res.detail = f"node{v} hears no peer (its p0 input dropped), its output flows"
    rule = "INPUT -i p0 -j DROP"
    f = run_fault(cl, "oneway", range(cl.n),
                  lambda: cl.net.in_ns(v, f"iptables -A {rule}"),
                  lambda: cl.net.in_ns(v, f"iptables -D {rule}"), cl.p["fault_ms"] / 1000)
    after_fault(cl, f, res)


def sc_cut_link(cl, res):
    a, b = cl.rng.sample(range(cl.n), 2)
    res.detail = f"link node{a}<->node{b} cut (blackhole routes), the others reach both"

    def cut(op):
        cl.net.in_ns(a, f"ip route {op} blackhole {cl.net.peer_ip(b)}/32")
        cl.net.in_ns(b, f"ip route {op} blackhole {cl.net.peer_ip(a)}/32")

    f = run_fault(cl, "cut_link", [a, b], lambda: cut("add"), lambda: cut("del"),
                  cl.p["fault_ms"] / 1000)
    after_fault(cl, f, res)


def sc_loss(cl, res):
    pct = 15  # each packet crosses two nodes' rules: about 28 % lost per path
    res.detail = (f"{pct}% of peer packets dropped on input and on output of every node "
                  "(iptables statistic), about 28% per path")
    rules = [f"INPUT -i p0 -m statistic --mode random --probability {pct / 100} -j DROP",
             f"OUTPUT -o p0 -m statistic --mode random --probability {pct / 100} -j DROP"]

    def apply(op):
        for i in range(cl.n):
            for r in rules:
                cl.net.in_ns(i, f"iptables {op} {r}")

    f = run_fault(cl, "loss", range(cl.n), lambda: apply("-A"), lambda: apply("-D"),
                  cl.p["fault_ms"] / 1000)
    after_fault(cl, f, res)


def nfq_start(cl, nodes, args):
    """nfq_netem bound to NFQ_QUEUE in each node's namespace (started together: each start
    is a fork and exec); returns {node: process} once every one is bound."""
    progs = {}
    for i in nodes:
        progs[i] = subprocess.Popen(["ip", "netns", "exec", cl.net.ns(i), cl.args.nfq_netem,
                                     "--queue", str(NFQ_QUEUE), "--mark", NFQ_MARK,
                                     "--seed", str(cl.seed * 100 + i)] + args,
                                    stdout=subprocess.PIPE, text=True, preexec_fn=child_setup)
        cl.nfq.append(progs[i])
    deadline = now() + 10
    for i, p in progs.items():
        ready = select.select([p.stdout], [], [], max(0.0, deadline - now()))[0]
        line = p.stdout.readline() if ready else ""
        if not line.startswith("nfq_netem: ready"):
            raise RuntimeError(f"nfq_netem in node{i}'s namespace not ready in 10 s: {line!r}")
    return progs


def nfq_stop(cl, p):
    """SIGTERM (every held packet is accepted); its counters (name -> value)."""
    p.send_signal(signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        raise RuntimeError("nfq_netem ignored SIGTERM for 10 s")
    if p.returncode != 0:
        raise RuntimeError(f"nfq_netem exited {p.returncode}")
    cl.nfq.remove(p)
    for line in out.splitlines():
        if line.startswith("nfq_netem:") and "=" in line:
            return {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
    return {}


def nfq(cl, res, name, args):
    """netem's fault through nfq_netem: every node's peer output queued to it (each packet
    between two nodes crosses one program, the sender's, as it crosses one netem qdisc)."""
    res.detail = f"nfq_netem {' '.join(args)} on every node's p0 output (NFQUEUE, no netem)"
    progs = {}

    def begin():
        progs.update(nfq_start(cl, range(cl.n), args))
        for i in range(cl.n):
            cl.net.in_ns(i, f"iptables -A {NFQ_RULE}")

    def end():
        for i in range(cl.n):  # the rules first: a packet queued after the program stops is lost
            cl.net.in_ns(i, f"iptables -D {NFQ_RULE}")
        for i, p in progs.items():
            for k, v in nfq_stop(cl, p).items():
                if v and k != "held_peak":
                    res.metrics[f"nfq_{k}"] = res.metrics.get(f"nfq_{k}", 0) + v
                elif k == "held_peak":
                    res.metrics["nfq_held_peak"] = max(res.metrics.get("nfq_held_peak", 0), v)

    f = run_fault(cl, name, range(cl.n), begin, end, cl.p["fault_ms"] / 1000)
    # A rule that matched nothing would pass the scenario without a fault: the programs
    # must have done what this scenario is about to some of the peer traffic.
    did = {"delay": "nfq_delayed", "reorder": "nfq_reordered", "duplicate": "nfq_duplicated"}
    if not res.metrics.get(did[name]):
        cl.violation(None, "fault_inert", f"{name}: nfq_netem counted no {did[name][4:]} "
                     f"packet ({res.metrics})")
    after_fault(cl, f, res)


def netem(cl, res, name, spec, nfq_args):
    if not netem_ok():
        return nfq(cl, res, name, nfq_args)
    res.detail = f"netem {spec} on every node's p0"

    def apply(op):
        for i in range(cl.n):
            cl.net.in_ns(i, f"tc qdisc {op} dev p0 root" + (f" netem {spec}" if op == "add" else ""))

    f = run_fault(cl, name, range(cl.n), lambda: apply("add"), lambda: apply("del"),
                  cl.p["fault_ms"] / 1000)
    after_fault(cl, f, res)


def sc_delay(cl, res):
    netem(cl, res, "delay", "delay 80ms 40ms", ["--delay", "80", "--jitter", "40"])


def sc_reorder(cl, res):
    # netem sends 25 % at once and delays the rest 20 ms; nfq_netem holds 25 % 20 ms and
    # sends the rest at once: either way packets sent within 20 ms of each other swap.
    netem(cl, res, "reorder", "delay 20ms reorder 25% 50%",
          ["--reorder", "25", "--reorder-ms", "20"])


def sc_duplicate(cl, res):
    netem(cl, res, "duplicate", "duplicate 20%", ["--duplicate", "20"])


def restart(cl, i, skew=None):
    node = cl.nodes[i]
    node.stop_gracefully()
    node.start(skew)
    cl.wait_ready([i], 30)


def sc_clock_skew(cl, res):
    a, b = cl.rng.sample(range(cl.n), 2)
    res.detail = f"node{a} at +5 s, node{b} at -5 s (libfaketime)"
    f = Fault("clock_skew", [a, b])
    cl.faults.append(f)
    restart(cl, a, "+5s")
    cl.hold(1)
    restart(cl, b, "-5s")
    f.end = now()  # from here every node is READY under skew: no exemption
    after_fault(cl, f, res)
    cl.hold(cl.p["fault_ms"] / 1000 * 2)  # deletes and churn across skewed nodes
    f2 = Fault("clock_skew_undo", [a, b])
    cl.faults.append(f2)
    restart(cl, a)
    restart(cl, b)
    f2.end = now()
    after_fault(cl, f2, res)


def sc_rolling_restart(cl, res):
    order = list(range(cl.n))
    cl.rng.shuffle(order)
    res.detail = "SIGTERM and restart, in order " + ",".join(f"node{i}" for i in order)
    for i in order:
        f = Fault("restart", [i])
        cl.faults.append(f)
        restart(cl, i)
        f.end = now()
        after_fault(cl, f, res)


def sc_membership(cl, res):
    if cl.n != 3:
        raise Skip("membership grows 3 -> 4 -> 5 and shrinks back: run it with --nodes 3")
    res.detail = "3 -> 4 -> 5 -> 3 members, cluster.conf rewritten and SIGHUP"
    members = list(range(3))
    steps = [[0, 1, 2, 3], [0, 1, 2, 3, 4], [0, 1, 2]]
    for want in steps:
        added = [i for i in want if i not in members]
        removed = [i for i in members if i not in want]
        f = Fault("membership", range(5))
        cl.faults.append(f)
        cl.write_conf(want)
        for i in added:
            cl.nodes[i].start()
            if i >= len(cl.samplers):
                while len(cl.samplers) <= i:
                    s = Sampler(cl, len(cl.samplers))
                    cl.samplers.append(s)
                    s.start()
        for i in members:
            cl.nodes[i].signal(signal.SIGHUP)
        if removed:
            cl.serving = [i for i in cl.serving if i not in removed]
        for i in added:
            cl.wait_ready([i], 30)
        cl.serving = sorted(set(cl.serving) | set(added))
        cl.wait_ready(cl.serving, 30)
        cl.hold(cl.p["fault_ms"] / 2000)  # every member sampled under the beats a while
        for i in removed:
            cl.hold(cl.heal_grace)
            cl.nodes[i].stop_gracefully()
        members = want
        f.end = now()
        after_fault(cl, f, res)


def sc_selfcheck(cl, res):
    """The checker's own test: faults made behind the clients' back must be seen.

    Deletes 10 live instances (their clients do not know, and re-create them
    at their next beat) and re-registers 2 acknowledged deletes (a fake
    resurrection). Passes only if invariants 1 and 2 both report them; the
    expected reports are then cleared.
    """
    h = Http(cl, 2.0)
    live = [x for c in cl.clients for x in list(c.insts) if x.reg_ack is not None][:10]
    deadline = now() + 15
    while now() < deadline:
        gone = [x for x in list(cl.dead) if x.del_ack is not None and x.del_ack < now() - 2][:2]
        if len(gone) == 2:
            break
        cl.hold(0.2)
    if len(gone) < 2:
        raise RuntimeError("selfcheck: no acknowledged delete yet to resurrect")
    for x in live:
        q = urllib.parse.urlencode({"serviceName": x.svc, "ip": x.ip, "port": x.port,
                                    "ephemeral": "true"})
        h.request(0, "DELETE", f"/nacos/v1/ns/instance?{q}")
    for x in gone:
        q = urllib.parse.urlencode({"serviceName": x.svc, "ip": x.ip, "port": x.port,
                                    "ephemeral": "true"})
        h.request(0, "POST", f"/nacos/v1/ns/instance?{q}")
    cl.hold(1.5)
    for x in gone:  # so that the cluster converges again
        q = urllib.parse.urlencode({"serviceName": x.svc, "ip": x.ip, "port": x.port,
                                    "ephemeral": "true"})
        h.request(0, "DELETE", f"/nacos/v1/ns/instance?{q}")
    h.close()
    t = now()
    c = cl.converge(t, cl.p["conv_limit_ms"] / 1000)
    with cl.lock:
        seen = dict(res.counts)
        res.counts.clear()
        res.keys.clear()
        res.examples.clear()
    res.detail = f"made: 10 live deleted, 2 deletes undone; checker saw {seen}"
    if not seen.get("live_missing") or not seen.get("delete_undone"):
        cl.violation(None, "selfcheck_blind", f"the checker saw only {seen}")
    if c is None:
        cl.violation(None, "no_convergence", "selfcheck: not converged after the repair")
    else:
        res.convergence_ms.append(round(c * 1000))


SCENARIOS = {name: globals()[f"sc_{name}"] for name in ALL_SCENARIOS + ["selfcheck"]}


# ------------------------------------------------------------------- main


def report(cl, args, wall_s, sanitizer):
    lines = [f"# distrod fault campaign: seed {args.seed}, profile {args.profile}", "",
             f"- nodes {cl.n}, instances {cl.p['instances']} in {cl.p['services']} services, "
             f"{cl.p['workers']} clients, beat {cl.p['interval']} ms, unhealthy "
             f"{cl.p['unhealthy']} ms, delete {cl.p['delete']} ms",
             f"- peer timers: ping {cl.p['peer_ping']}, suspect {cl.p['peer_suspect']}, down "
             f"{cl.p['peer_down']}, verify {cl.p['verify']} ms; fault length {cl.p['fault_ms']} ms",
             f"- distrod: {cl.distrod}; wall time {wall_s:.0f} s; machine {os.uname().release}, "
             f"{os.cpu_count()} CPUs",
             f"- samples: " + ", ".join(f"node{s.i} {s.count}" for s in cl.samplers),
             f"- client requests {sum(c.requests for c in cl.clients)}, failovers "
             f"{sum(c.failovers for c in cl.clients)}, beats failed on every node "
             f"{sum(c.beats_failed for c in cl.clients)}, beats sent over an interval late "
             f"{sum(c.late_beats for c in cl.clients)} (worst "
             f"{max((c.late_max for c in cl.clients), default=0) * 1000:.0f} ms), deletes acked "
             f"{sum(1 for x in cl.dead if x.del_ack)}",
             f"- RSS (max kB): " + ", ".join(f"node{n.i} {n.rss_max}" for n in cl.nodes if n.starts),
             "", "| scenario | status | convergence ms | violations | counters (nodes, clients) | detail |",
             "|---|---|---|---|---|---|"]
    for r in [cl.results_setup] + cl.results:
        v = ", ".join(f"{k} {n}" + (f" ({len(r.keys[k])} instances)" if k in r.keys else "")
                      for k, n in sorted(r.counts.items())) or "none"
        conv = ", ".join(str(c) for c in r.convergence_ms) or "-"
        when = f" (UTC {', '.join(r.windows)})" if r.windows else ""
        m = ", ".join(f"{k} {n}" for k, n in sorted(r.metrics.items())) or "-"
        lines.append(f"| {r.name} | {r.status} | {conv} | {v} | {m} | {r.detail or r.reason}{when} |")
    lines.append("")
    for r in [cl.results_setup] + cl.results:
        for kind, ex in sorted(r.examples.items()):
            lines.append(f"**{r.name} / {kind}** (first {len(ex)}):")
            lines += [f"- {e}" for e in ex]
            lines.append("")
    if sanitizer:
        lines.append("**sanitizer reports:**")
        lines += [f"- {s}" for s in sanitizer]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--distrod", required=True)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="short")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nodes", type=int, default=3, choices=[3, 4, 5])
    ap.add_argument("--scenarios", default="all",
                    help="comma list of " + ",".join(ALL_SCENARIOS) + " or all "
                    "(and selfcheck: the checker's own test)")
    ap.add_argument("--duration", type=int, default=0,
                    help="seconds: repeat the scenarios in a seeded order until this long")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each scenario this many times in a row (a rare failure shows "
                    "every time, not now and then)")
    ap.add_argument("--instances", type=int)
    ap.add_argument("--dir", default=None, help="logs and report (default: a new /tmp dir)")
    ap.add_argument("--report", default=None, help="write the markdown report here too")
    ap.add_argument("--nfq-netem", default=None,
                    help="the nfq_netem program: delay, reorder and duplicate through NFQUEUE "
                    "where the kernel has no sch_netem")
    args = ap.parse_args()
    args.scenarios = list(ALL_SCENARIOS) if args.scenarios == "all" else args.scenarios.split(",")
    for s in args.scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    p = dict(PROFILES[args.profile])
    if args.instances:
        p["instances"] = args.instances
    args.dir = args.dir or f"/tmp/chaos-{os.getpid()}"
    try:
        need_privileges()
    except Skip as e:
        print(f"chaos: skipped: {e}", flush=True)
        return SKIP
    skipped = []
    for name in list(args.scenarios):
        try:
            precheck(name, args)
        except Skip as e:
            r = Result(name)
            r.status, r.reason = "skipped", str(e)
            skipped.append(r)
            args.scenarios.remove(name)
            print(f"chaos: {name} skipped: {e}", flush=True)
    if not args.scenarios:
        return SKIP
    args.scenarios = [n for n in args.scenarios for _ in range(max(1, args.repeat))]
    def on_term(signum, frame):  # ctest's timeout: stop the nodes, remove the network
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the clean-up finish
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    cl = Cluster(args, p)
    cl.results_setup = Result("(setup and between faults)")
    cl.results.extend(skipped)
    t0 = now()
    rc = 0
    try:
        log(f"seed {args.seed}, {cl.n} nodes, logs in {args.dir}")
        cl.start()
        cl.start_workload()
        cl.hold(p["settle_ms"] / 1000)
        c = cl.converge(now(), p["conv_limit_ms"] / 1000)
        if c is None:
            cl.violation(None, "no_convergence", "the cluster never converged before any fault")
        order = list(args.scenarios)
        rounds = 0
        while True:
            for name in order:
                res = Result(name)
                cl.results.append(res)
                cl.result = res
                log(f"scenario {name}")
                before = cl.metrics()
                cb = cl.client_counts()
                try:
                    SCENARIOS[name](cl, res)
                    cl.hold(p["settle_ms"] / 1000)
                except Skip as e:
                    res.status, res.reason = "skipped", str(e)
                    log(f"  skipped: {e}")
                after = cl.metrics()
                for k, v in cl.client_counts().items():  # what the clients lived through
                    if v - cb[k]:
                        res.metrics[k] = v - cb[k]
                for (i, k), v in after.items():  # a restarted node counts from 0
                    b = before.get((i, k), 0)
                    d = int(v - b if v >= b else v)
                    if d:
                        key = k[len("distrod_"):]
                        res.metrics[key] = res.metrics.get(key, 0) + d
                if res.counts:
                    res.status = "failed"
                log(f"  {res.status} convergence {res.convergence_ms} ms {res.counts} "
                    f"metrics {res.metrics}")
                cl.result = None
            rounds += 1
            if now() - t0 >= args.duration:
                break
            order = list(args.scenarios)
            cl.rng.shuffle(order)
    except (Exception, KeyboardInterrupt) as e:  # a broken or stopped campaign is a failure
        log(f"campaign error: {e!r}")
        cl.results_setup.counts["campaign_error"] = 1
        cl.results_setup.examples["campaign_error"] = [repr(e)]
        rc = 1
    finally:
        cl.result = None
        cl.stop_all()
        cl.net.down()
    sanitizer = cl.sanitizer_reports()
    text = report(cl, args, now() - t0, sanitizer)
    with open(f"{args.dir}/report.md", "w") as f:
        f.write(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    print(text, flush=True)
    ran = [r for r in cl.results if r.status != "skipped"]
    if rc or sanitizer or cl.results_setup.counts or any(r.status == "failed" for r in ran):
        return 1
    if not ran:
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
