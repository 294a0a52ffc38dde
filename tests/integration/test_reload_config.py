#!/usr/bin/python3
"""SIGHUP re-reads the configuration (docs/reload.md).

One private namespace, loopback:
  nts     ntsd: NTS-KE 127.0.0.1:KE_PORT and NTP 127.0.0.1:NTP_N (stratum 1)
  plain   ntsd: plain NTP on 127.0.0.1:NTP_A and 127.0.0.1:NTP_B (stratum 1)
  client  ntsd, with NOTIFY_SOCKET set to the test's datagram socket:
          an NTS source (the nts server) and a plain source (NTP_A)

Passes when, after the client has an NTS session and answers from both:
  * a new file that removes the plain NTP_A source and adds NTP_B, with
    the NTS line unchanged (only moved to another line), is applied on
    SIGHUP: `ntsctl peers` lists the NTS source and NTP_B, not NTP_A; the NTS
    association is the same one (its `sent` counter went on, no new NTS-KE:
    the client's KE count and the server's served KEs are unchanged, no new
    "new NTS association" line) and NTP_B gets answers;
  * the service manager got RELOADING=1 (with MONOTONIC_USEC) and then
    READY=1;
  * a file with an error is refused: the error is logged with file:line,
    the running sources stay, and READY=1 follows as well;
  * a changed `listen` line, and new `statistics`, are named as not applied
    until a restart.
"""
import os
import select
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT, NTP_N, NTP_A, NTP_B = 14480, 11142, 11143, 11144


class Listener:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.msgs = []

    def poll(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.s], [], [], left)[0]:
                return
            text = self.s.recv(4096).decode("utf-8", "replace")
            self.msgs.append(dict(ln.split("=", 1) for ln in text.split("\n") if "=" in ln))


def count(proc, text):
    return sum(text in ln for ln in proc.read_log().splitlines())


def main():
    tmp = h.tmpdir()
    pki = h.make_test_pki()
    nts = h.NtsKeServer("nts", pki, KE_PORT, NTP_N, debug=False)
    plain = h.Ntsd("plain", ["listen 127.0.0.1:%d" % NTP_A, "listen 127.0.0.1:%d" % NTP_B,
                             "local stratum 1"], debug=False)
    lst = Listener(os.path.join(tmp, "notify"))

    d = os.path.join(tmp, "client")
    os.makedirs(d)
    conf = os.path.join(d, "ntp.conf")
    sock = os.path.join(d, "ntsd.sock")
    nts_line = "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT
    first = ["disable ntp", "nts ca %s" % pki.ca_cert, nts_line,
             "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % NTP_A]
    with open(conf, "w") as f:
        f.write("\n".join(first) + "\n")
    env = dict(os.environ, NOTIFY_SOCKET=lst.path)
    client = h.start_process("client", [h.NTSD_BIN, "-c", conf, "-n", "-x", "-d", "-s", sock],
                             kind="ours", env=env)

    def ctl(*args):
        r = h.run_cmd([h.NTSCTL_BIN, "-s", sock] + list(args) + ["--json"])
        if r.returncode != 0:
            return None
        import json
        return json.loads(r.stdout)

    def by_addr():
        return {p["address"]: p for p in (ctl("peers") or [])}

    nts_addr = "127.0.0.1:%d" % KE_PORT  # replaced by the NTP address after NTS-KE
    a_addr, b_addr = "127.0.0.1:%d" % NTP_A, "127.0.0.1:%d" % NTP_B

    def nts_peer():
        ps = [p for p in (ctl("peers") or []) if p["nts"]]
        return ps[0] if ps else None

    h.wait_until(lambda: (nts_peer() or {}).get("cookies", 0) >= 4 and
                 (nts_peer() or {}).get("received", 0) >= 2, 20, "an NTS session with answers")
    h.wait_until(lambda: by_addr().get(a_addr, {}).get("received", 0) >= 2, 20,
                 "answers from the plain source")
    lst.poll(0.5)
    h.check(any(m.get("READY") == "1" for m in lst.msgs), "no READY=1 at start")
    before = nts_peer()
    client_kes = ctl("nts")["ke_probes_good"]
    server_kes = nts.nts_stats()["ke_serves_good"]
    new_assoc = count(client, "new NTS association")
    h.log("before: NTS peer sent %d cookies %d, client KEs %d, server KEs %d" % (
        before["sent"], before["cookies"], client_kes, server_kes))

    # The plain source replaced, the NTS line moved but the same; listen
    # and statistics added (not applied).
    second = ["disable ntp", "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % NTP_B,
              "nts ca %s" % pki.ca_cert, "# moved", nts_line, "listen 127.0.0.1:%d" % 11199,
              "statsdir %s" % d, "statistics loopstats"]
    with open(conf, "w") as f:
        f.write("\n".join(second) + "\n")
    n_msgs = len(lst.msgs)
    os.kill(client.pid, signal.SIGHUP)
    h.wait_until(lambda: count(client, "reload: sources: 1 kept, 1 removed, 1 added") == 1,
                 5, "the reload to be logged")
    h.wait_until(lambda: b_addr in by_addr() and a_addr not in by_addr(), 5,
                 "peers to list %s and not %s" % (b_addr, a_addr))
    h.wait_until(lambda: by_addr()[b_addr]["received"] >= 2, 20, "answers from the new source")
    after = nts_peer()
    h.check(after is not None and after["address"] == before["address"],
            "the NTS association is gone or moved: %r" % (after,))
    h.check(after["sent"] > before["sent"],
            "the NTS association started again (sent %d, before %d)" % (
                after["sent"], before["sent"]))
    h.check(ctl("nts")["ke_probes_good"] == client_kes, "the client did a new NTS-KE")
    h.check(nts.nts_stats()["ke_serves_good"] == server_kes, "the server served a new NTS-KE")
    h.check(count(client, "new NTS association") == new_assoc, "a new NTS association")
    h.check(count(client, "listen / interface changed: not applied") == 1,
            "the listen change is not named as not applied")
    h.check(count(client, "statsdir / statistics / filegen changed: not applied") == 1,
            "the statistics change is not named as not applied")
    h.log("after: NTS peer sent %d cookies %d; peers %s" % (
        after["sent"], after["cookies"], sorted(by_addr())))
    lst.poll(1.0)
    new = lst.msgs[n_msgs:]
    h.log("notifications: %r" % new)
    ri = [i for i, m in enumerate(new) if m.get("RELOADING") == "1"]
    h.check(ri and "MONOTONIC_USEC" in new[ri[0]], "no RELOADING=1 with MONOTONIC_USEC")
    h.check(any(m.get("READY") == "1" for m in new[ri[0]:]), "no READY=1 after RELOADING=1")

    # A file with an error: refused, with file:line; the sources stay.
    with open(conf, "w") as f:
        f.write("\n".join(second + ["server 127.0.0.1:%d minpoll 99" % NTP_A]) + "\n")
    n_msgs = len(lst.msgs)
    os.kill(client.pid, signal.SIGHUP)
    h.wait_until(lambda: count(client, "refused (1 error)") == 1, 5, "the refusal")
    want = "%s:%d:" % (conf, len(second) + 1)
    lines = [ln for ln in client.read_log().splitlines() if "reload:" in ln and want in ln]
    h.check(lines, "no error line naming %s" % want)
    h.log("refusal: %s" % lines[0])
    time.sleep(1)
    h.check(sorted(by_addr()) == sorted([after["address"], b_addr]),
            "the sources changed after a refused file: %s" % sorted(by_addr()))
    lst.poll(1.0)
    new = lst.msgs[n_msgs:]
    h.check(any(m.get("RELOADING") == "1" for m in new) and
            any(m.get("READY") == "1" for m in new), "no RELOADING=1 / READY=1: %r" % new)
    client.check_no_crash()
    plain.proc.check_no_crash()


h.run(main)
