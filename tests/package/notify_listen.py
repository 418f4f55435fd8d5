#!/usr/bin/env python3
"""Stands in for systemd's notification socket (sd_notify(3)) in the tests.

    notify_listen.py SOCKET LOG [SECONDS]

Binds an AF_UNIX datagram socket at SOCKET (the path given to distrod in
NOTIFY_SOCKET) and appends every datagram to LOG as one line: the
milliseconds since the listener started, a tab, and the message with its
newlines shown as '|' ("READY=1|STATUS=standalone, serving ..."). The line
is flushed at once, so a test polls LOG while distrod runs. Exits after
SECONDS (default 120) or on SIGTERM, removing SOCKET.
"""
import os
import signal
import socket
import sys
import time


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    path, log = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) == 4 else 120.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.path.exists(path):
        os.unlink(path)
    sock.bind(path)
    t0 = time.monotonic()
    deadline = t0 + seconds
    try:
        with open(log, "a", encoding="utf-8") as out:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    msg = sock.recv(4096)
                except socket.timeout:
                    break
                ms = int((time.monotonic() - t0) * 1000)
                text = msg.decode("utf-8", "replace").rstrip("\n").replace("\n", "|")
                out.write(f"{ms}\t{text}\n")
                out.flush()
    finally:
        sock.close()
        if os.path.exists(path):
            os.unlink(path)


if __name__ == "__main__":
    main()
