#!/usr/bin/env python3
"""distrod under a stand-in for systemd: the sd_notify messages it sends.

    notify_test.py DISTROD DISTROCTL

Runs the given binaries (the build tree's from ctest, the installed
/usr/bin ones from tests/package/run.sh) on loopback with ports chosen by
the kernel, with NOTIFY_SOCKET pointing at notify_listen.py's socket:

  standalone  READY=1 with a STATUS= once it listens (the client port
              answers when READY=1 is seen); WATCHDOG=1 again and again
              when WATCHDOG_USEC is set with WATCHDOG_PID = distrod's pid;
              an instance registered and listed with DISTROCTL; /metrics
              names the build that --version prints; SIGTERM gives
              STOPPING=1 and exit 0.
  cluster     two members, the first started alone: it says "loading from
              peers" and sends READY=1 only when it becomes READY (after
              --startup-wait with no READY peer), its /health says not
              ready until then; the second loads from it and reports
              "READY, 2/2 members up"; no WATCHDOG=1 without WATCHDOG_USEC.

Every wait is bounded; a failure prints the nodes' logs and exits 1.
Instance addresses are documentation ranges (192.0.2.0/24), never probed.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DISTROD, DISTROCTL = (sys.argv[1:3] + [None, None])[:2]
if DISTROCTL is None:
    sys.exit(__doc__)
TMP = tempfile.mkdtemp(prefix="distro-notify-")
PROCS = []  # (name, Popen, log path)
LISTENERS = []


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)
    print(f"ok - {what}", flush=True)


def wait_for(cond, what, timeout_s=15.0):
    """Polls cond every 20 ms until it returns something true, at most timeout_s."""
    end = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise Failed(f"timed out after {timeout_s} s: {what}")
        time.sleep(0.02)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """notify_listen.py on a socket of its own; lines() reads what came so far."""

    def __init__(self, name):
        self.sock = os.path.join(TMP, f"{name}.notify")
        self.log = os.path.join(TMP, f"{name}.notify.log")
        open(self.log, "w").close()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "notify_listen.py"), self.sock, self.log, "300"])
        LISTENERS.append(self.proc)
        wait_for(lambda: os.path.exists(self.sock), f"{name}: the notify socket")

    def lines(self):
        """[(ms since the listener started, message with '|' for newlines)]"""
        with open(self.log, encoding="utf-8") as f:
            return [(int(ms), msg) for ms, msg in (ln.rstrip("\n").split("\t", 1) for ln in f)]

    def first(self, prefix):
        for ms, msg in self.lines():
            if msg.startswith(prefix):
                return ms, msg
        return None

    def count(self, prefix):
        return sum(1 for _, msg in self.lines() if msg.startswith(prefix))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Node:
    def __init__(self, name, listener, extra=(), watchdog_usec=None):
        self.name = name
        self.port_file = os.path.join(TMP, f"{name}.port")
        self.http_file = os.path.join(TMP, f"{name}.http")
        self.log = os.path.join(TMP, f"{name}.log")
        env = dict(os.environ, NOTIFY_SOCKET=listener.sock)
        for k in ("WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
            env.pop(k, None)
        args = [DISTROD, "--bind", "127.0.0.1", "--http-bind", "127.0.0.1",
                "--port", "0", "--port-file", self.port_file,
                "--http-port", "0", "--http-port-file", self.http_file,
                "--nacos-port", "0", "--workers", "2", *extra]
        if watchdog_usec is not None:
            # systemd names the pid it watches: the shell's, which exec makes distrod's.
            env["WATCHDOG_USEC"] = str(watchdog_usec)
            args = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *args]
        self.started = time.monotonic()
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        PROCS.append((name, self.proc, self.log))
        self.port = int(wait_for(lambda: read(self.port_file), f"{name}: --port-file"))
        self.http = int(wait_for(lambda: read(self.http_file), f"{name}: --http-port-file"))

    def get(self, path):
        """(status, body) of GET path on the admin port."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def ctl(self, *args):
        return subprocess.run([DISTROCTL, "-s", f"127.0.0.1:{self.port}", *args],
                              capture_output=True, text=True, timeout=20)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


def read(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return text or None
    except FileNotFoundError:
        return None


def standalone():
    print("# standalone, with a watchdog of 600 ms", flush=True)
    version = subprocess.run([DISTROD, "--version"], capture_output=True, text=True, timeout=10)
    check(version.returncode == 0 and version.stdout.startswith("distrod "),
          f"distrod --version: {version.stdout.strip()}")
    release, commit = version.stdout.split()[1], version.stdout.split("(git ")[1].rstrip(")\n")

    lst = Listener("solo")
    node = Node("solo", lst, watchdog_usec=600000)
    ms, ready = wait_for(lambda: lst.first("READY=1"), "READY=1")
    check(ready.startswith("READY=1|STATUS=standalone, serving (client port "
                           f"{node.port}, Nacos port "), f"READY=1 with its status: {ready}")
    check(node.ctl("ping").returncode == 0, "the client port answers once READY=1 came")
    wait_for(lambda: lst.count("WATCHDOG=1") >= 3, "three WATCHDOG=1", 10)
    pings = [m for m, msg in lst.lines() if msg == "WATCHDOG=1"]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    check(all(gap < 600 for gap in gaps), f"WATCHDOG=1 well within WatchdogSec (gaps {gaps} ms)")

    reg = node.ctl("register", "pkg.orders", "192.0.2.10:8080", "--meta", "zone=a")
    check(reg.returncode == 0, f"distroctl register: {reg.stdout.strip()} {reg.stderr.strip()}")
    listed = node.ctl("list", "pkg.orders")
    check(listed.returncode == 0 and "192.0.2.10:8080" in listed.stdout,
          f"distroctl list shows it: {listed.stdout.strip()}")

    code, metrics = node.get("/metrics")
    want = f'distrod_build_info{{version="{release}",commit="{commit}"}} 1'
    check(code == 200 and want in metrics, f"/metrics: {want}")

    rc = node.stop()
    check(rc == 0, f"SIGTERM: exit status {rc}")
    stopping = wait_for(lambda: lst.first("STOPPING=1"), "STOPPING=1", 5)
    check("STATUS=stopping (SIGTERM)" in stopping[1], f"STOPPING=1 on SIGTERM: {stopping[1]}")
    check(lst.count("READY=1") == 1, "READY=1 was sent once")
    lst.stop()


def cluster():
    print("# cluster of two, the first started alone", flush=True)
    # a is member 1 (members are numbered in the sorted order of their addresses): alone, it
    # holds the quorum of two by the tie-break, so it takes the registration below; member 2
    # alone would answer writes "unavailable" (docs/distro.md, "Partitions").
    peers = sorted([free_port(), free_port()], key=lambda p: f"127.0.0.1:{p}")
    conf = os.path.join(TMP, "cluster.conf")
    secret = os.path.join(TMP, "secret")
    with open(conf, "w") as f:
        f.write("".join(f"127.0.0.1:{p}\n" for p in peers))
    with open(secret, "w") as f:
        f.write(os.urandom(16).hex())
    os.chmod(secret, 0o600)
    common = ["--cluster-conf", conf, "--cluster-secret-file", secret,
              "--peer-ping", "50", "--peer-suspect", "300", "--peer-down", "900",
              "--verify-interval", "200"]
    wait_ms = 2000

    la = Listener("a")
    a = Node("a", la, [*common, "--peer-port", str(peers[0]), "--startup-wait", str(wait_ms)])
    first = wait_for(lambda: la.lines() and la.lines()[0], "a: the first message")
    check(first[1] == "STATUS=cluster: loading from peers (1/2 members up)",
          f"a: not READY at first, says so: {first[1]}")
    code, body = a.get("/health")
    ready = la.first("READY=1")
    check(ready is not None or (code == 503 and "not ready" in body),
          f"a: /health not ready while no READY=1 was sent ({code} {body})")
    ms, msg = wait_for(lambda: la.first("READY=1"), "a: READY=1", 15)
    elapsed = (time.monotonic() - a.started) * 1000
    # Alone, a is member 1 and holds the quorum of two: no ", no quorum (...)" suffix.
    check(msg.startswith("READY=1|STATUS=cluster: READY, 1/2 members up"), f"a: {msg}")
    check(elapsed >= wait_ms, f"a: READY=1 only after --startup-wait ({elapsed:.0f} ms)")
    code, body = a.get("/health")
    check(code == 200, f"a: /health once READY=1 came ({code} {body})")

    reg = a.ctl("register", "pkg.cluster", "192.0.2.20:9000")
    check(reg.returncode == 0, "a: an instance registered")

    lb = Listener("b")
    b = Node("b", lb, [*common, "--peer-port", str(peers[1]), "--startup-wait", "10000"])
    ms, msg = wait_for(lambda: lb.first("READY=1"), "b: READY=1", 15)
    elapsed = (time.monotonic() - b.started) * 1000
    check(elapsed < 10000, f"b: READY=1 in {elapsed:.0f} ms, before its --startup-wait")
    check(msg.startswith("READY=1|STATUS=cluster: READY, 2/2 members up"),
          f"b: READY=1 after loading from a, well before its --startup-wait: {msg}")
    listed = b.ctl("list", "pkg.cluster")
    check("192.0.2.20:9000" in listed.stdout, "b: serves what a holds once READY=1 came")
    wait_for(lambda: any(m == "STATUS=cluster: READY, 2/2 members up" for _, m in la.lines()),
             "a: STATUS= follows b joining", 5)
    check(True, "a: STATUS=cluster: READY, 2/2 members up")
    check(la.count("WATCHDOG=1") == 0 and lb.count("WATCHDOG=1") == 0,
          "no WATCHDOG=1 without WATCHDOG_USEC")
    check(b.stop() == 0 and a.stop() == 0, "both stop with status 0")
    check(la.first("STOPPING=1") and lb.first("STOPPING=1"), "both sent STOPPING=1")
    la.stop()
    lb.stop()


def main():
    try:
        standalone()
        cluster()
    except Failed as e:
        print(f"not ok - {e}", flush=True)
        for name, proc, log in PROCS:
            if proc.poll() is None:
                proc.kill()
            with open(log, errors="replace") as f:
                tail = f.readlines()[-30:]
            print(f"---- {name}: last lines of its log ----\n{''.join(tail)}", flush=True)
        for path in sorted(os.listdir(TMP)):
            if path.endswith(".notify.log"):
                with open(os.path.join(TMP, path)) as f:
                    print(f"---- {path} ----\n{f.read()}", flush=True)
        return 1
    finally:
        for proc in [p for _, p, _ in PROCS] + LISTENERS:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    subprocess.run(["rm", "-rf", TMP], check=False)
    print("notify_test: all passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
