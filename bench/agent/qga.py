#!/usr/bin/env python3
# bench/agent: the same measurements as agent_bench through QEMU's guest agent (qemu-ga on
# a virtio-serial port; QMP-style JSON on a Unix socket): guest-exec of /bin/true polled
# with guest-exec-status, and 64 MiB written and read back with guest-file-*.
# usage: qga.py SOCKET N WAIT_S   prints "RESULT name value unit" lines
# SPDX-License-Identifier: GPL-2.0-or-later
import base64, json, os, random, socket, sys, time

path, n, wait_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t_start = float(os.environ.get("QGA_T0", time.time()))


class QGA:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def call(self, cmd, args=None, timeout=60):
        msg = {"execute": cmd}
        if args is not None:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        self.s.settimeout(timeout)
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("qga closed")
            r = json.loads(line)
            if "error" in r:
                raise RuntimeError(r["error"])
            if "return" in r:
                return r["return"]

    def sync(self, timeout):
        # guest-sync with a fresh id; stale answers from earlier tries are skipped.
        i = random.randrange(1 << 30)
        self.s.sendall(b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": i}}).encode() + b"\n")
        self.s.settimeout(timeout)
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("qga closed")
            line = line.lstrip(b"\xff").strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("return") == i:
                return

    def exec(self, path, args=()):
        pid = self.call("guest-exec", {"path": path, "arg": list(args), "capture-output": True})["pid"]
        while True:
            st = self.call("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                return st


end = time.time() + wait_s
q = None
while True:
    try:
        q = QGA(path)
        q.sync(2)
        break
    except (OSError, EOFError, socket.timeout):
        if time.time() > end:
            sys.exit("qga: no agent within %.0f s" % wait_s)
        if q:
            q.s.close()
        time.sleep(0.1)
st = q.exec("/bin/echo", ["hi"])
print("RESULT qga_cold_boot_to_first_output %.1f ms" % ((time.time() - t_start) * 1e3))
lat = []
for _ in range(n):
    t = time.time()
    q.exec("/bin/true")
    lat.append((time.time() - t) * 1e3)
lat.sort()
print("RESULT qga_exec_true_mean %.2f ms" % (sum(lat) / n))
print("RESULT qga_exec_true_median %.2f ms" % lat[n // 2])

chunk = bytes((i * 7919 >> 3) & 0xff for i in range(65536))
t = time.time()
h = q.call("guest-file-open", {"path": "/tmp/big", "mode": "w"})
for _ in range(1024):
    q.call("guest-file-write", {"handle": h, "buf-b64": base64.b64encode(chunk).decode()})
q.call("guest-file-close", {"handle": h})
print("RESULT qga_cp_to_guest_64MiB %.1f MiB/s" % (64 / (time.time() - t)))
t = time.time()
h = q.call("guest-file-open", {"path": "/tmp/big", "mode": "r"})
got = 0
while True:
    r = q.call("guest-file-read", {"handle": h, "count": 65536})
    got += len(base64.b64decode(r["buf-b64"]))
    if r.get("eof") or not r["count"]:
        break
q.call("guest-file-close", {"handle": h})
if got != 64 << 20:
    sys.exit("qga: read back %d bytes" % got)
print("RESULT qga_cp_from_guest_64MiB %.1f MiB/s" % (64 / (time.time() - t)))
