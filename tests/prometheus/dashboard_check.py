#!/usr/bin/env python3
"""Checks the Grafana dashboard (docs/prometheus/distrod.dashboard.json).

    dashboard_check.py --promtool PROMTOOL --dashboard FILE

The dashboard is data, so what can break is its expressions and its
structure. This checks that:

  - every panel target's `expr` parses as PromQL: promtool has no "parse
    this expression" command, so each becomes a recording rule of a
    temporary rules file that `promtool check rules` must accept;
  - Grafana's variables are only the ones substituted below ($job,
    $instance, $__rate_interval, $__interval, ${DS_PROMETHEUS}), so the
    substitution leaves PromQL, not a string that happens to pass;
  - every panel and target uses the datasource variable ${DS_PROMETHEUS},
    which the dashboard defines (type datasource, so it imports and
    provisions without editing), panel ids are unique, every panel but a
    row has targets and a grid position, and every distrod_* name appears
    in docs/http.md's metrics table or is the exported name of an X-macro
    counter (PEER_STATS, and the untyped fallback of the others; a name
    missing from the real scrape is caught by cluster_scrape.py, which
    compares them with what a real 3-node cluster exports).

Exit status 0, or 1 with every problem found.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# Grafana's variables, and what each becomes for the parse check: a value
# of the same PromQL kind (a duration, a label value, a regex).
SUBSTITUTE = [
    (re.compile(r"\$__rate_interval\b|\$\{__rate_interval\}"), "1m"),
    (re.compile(r"\$__interval\b|\$\{__interval\}"), "1m"),
    (re.compile(r"\$job\b|\$\{job\}"), "distrod"),
    (re.compile(r"\$instance\b|\$\{instance(:regex)?\}"), ".*"),
]
DATASOURCE = "${DS_PROMETHEUS}"


def panels(doc):
    """Every panel, rows' nested panels included."""
    for p in doc.get("panels", []):
        yield p
        for q in p.get("panels", []):
            yield q


def substitute(expr):
    for rx, value in SUBSTITUTE:
        expr = rx.sub(value, expr)
    return expr


def exprs(doc):
    """(panel title, expression with the variables substituted) of every target."""
    out = []
    for p in panels(doc):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append((p.get("title", "?"), substitute(t["expr"])))
    return out


def structure(doc):
    problems = []
    variables = {v.get("name"): v for v in doc.get("templating", {}).get("list", [])}
    ds = variables.get("DS_PROMETHEUS")
    if ds is None or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no datasource variable DS_PROMETHEUS of type prometheus")
    for name in ("job", "instance"):
        v = variables.get(name)
        if v is None or v.get("datasource", {}).get("uid") != DATASOURCE:
            problems.append(f"variable {name}: missing or not on {DATASOURCE}")
    ids = [p.get("id") for p in panels(doc)]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"panel ids not unique: {ids}")
    for p in panels(doc):
        title = p.get("title", "?")
        if "gridPos" not in p:
            problems.append(f"panel {title}: no gridPos")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != DATASOURCE:
            problems.append(f"panel {title}: datasource is not {DATASOURCE}")
        if not p.get("targets"):
            problems.append(f"panel {title}: no targets")
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != DATASOURCE:
                problems.append(f"panel {title}: a target's datasource is not {DATASOURCE}")
            if not t.get("expr"):
                problems.append(f"panel {title}: a target without expr")
    return problems


def xmacro(path, macro):
    """The counter names an X-macro declares (X(name) lines)."""
    with open(path) as f:
        text = f.read()
    block = text[text.index(f"#define {macro}(X)"):]
    block = block[:block.index("\n\n")]
    return re.findall(r"X\((\w+)\)", block)


def documented_names(src, http_md):
    """Names in docs/http.md's table, and those its rules name: every PEER_STATS
    counter as distrod_peer_<name>_total, every WORKER_STATS and STORE_STATS
    one as distrod_worker_<name> / distrod_store_<name> (the untyped fallback)."""
    names = set()
    with open(http_md) as f:
        names |= set(re.findall(r"`(distrod_[a-z0-9_]+)`", f.read()))
    names |= {f"distrod_peer_{n}_total"
              for n in xmacro(os.path.join(src, "cluster/view.h"), "PEER_STATS")}
    names |= {f"distrod_worker_{n}"
              for n in xmacro(os.path.join(src, "server/stats.h"), "WORKER_STATS")}
    names |= {f"distrod_store_{n}"
              for n in xmacro(os.path.join(src, "store/store.h"), "STORE_STATS")}
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--http-md", required=True, help="docs/http.md")
    ap.add_argument("--src", required=True, help="src/, for the X-macros")
    args = ap.parse_args()

    with open(args.dashboard) as f:
        doc = json.load(f)
    problems = structure(doc)
    found = exprs(doc)
    if len(found) < 10:
        problems.append(f"only {len(found)} expressions found: the extraction is broken")
    for title, e in found:
        if "$" in e:
            problems.append(f"panel {title}: a variable left after substitution: {e}")

    # Names: histogram series are documented by their family name.
    documented = documented_names(args.src, args.http_md)
    for title, e in found:
        for name in re.findall(r"\bdistrod_[a-z0-9_]+", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in documented and base not in documented:
                problems.append(f"panel {title}: {name} is not in docs/http.md's metrics table")

    with tempfile.TemporaryDirectory(prefix="distro-dash-") as d:
        rules = os.path.join(d, "dashboard.rules.yml")
        with open(rules, "w") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (title, e) in enumerate(found):
                f.write(f"      # {title}\n")
                f.write(f"      - record: dashboard:expr_{i}\n")
                f.write(f"        expr: {json.dumps(e)}\n")
        r = subprocess.run([args.promtool, "check", "rules", rules],
                           capture_output=True, text=True)
        if r.returncode != 0:
            problems.append(f"promtool check rules: {r.stdout}{r.stderr}")
        elif f"SUCCESS: {len(found)} rules found" not in r.stdout:
            problems.append(f"promtool did not check all {len(found)} expressions: {r.stdout}")

    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        return 1
    print(f"ok: {len(found)} expressions parse, structure and names as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
