#!/usr/bin/python3
"""`ntsctl peers` names sources as configured, `ntsctl -n peers` by address
and port (ntpq -p / ntpq -pn), with no reverse lookup either way.

One private namespace, loopback only.  ntsd has three sources, none of
which needs to answer: `server localhost:P1` (the name comes from
/etc/hosts; no DNS is involved), `server 127.0.0.1:P2`, and
`pool localhost:P3`.

Passes when, once every source is resolved:
  * the text table shows `localhost` for the server, `127.0.0.1` for the
    literal, and each pool member by its address (members have no name of
    their own), and never the server's address:port;
  * with -n (and --numeric) every row shows the address and port, and
    `localhost` appears nowhere;
  * --json is unchanged: "remote" is the configured name, "address" the
    address and port, for every source;
  * the daemon refuses "peers numeric numeric" and "peers bogus" on the
    socket (one option, once).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

P1, P2, P3 = 18123, 18124, 18125


def rows(table):
    return [ln[1:23].strip() for ln in table.splitlines()[2:] if ln.strip()]


def main():
    h.require_ours()
    d = h.Ntsd("client", ["interface ignore all",
                          "server localhost:%d" % P1,
                          "server 127.0.0.1:%d" % P2,
                          "pool localhost:%d" % P3], ready="peers")

    def resolved():
        ps = d.peers()
        named = [p for p in ps if p["remote"] == "localhost" and not p["pool"]]
        pool = [p for p in ps if p["pool"] and p["address"]]
        return ps if named and named[0]["address"] and pool else None
    peers = h.wait_until(resolved, 20, "the sources to be resolved")
    h.log("peers: %r" % [(p["remote"], p["address"], p["pool"]) for p in peers])
    server = [p for p in peers if p["remote"] == "localhost" and not p["pool"]][0]
    literal = [p for p in peers if p["remote"] == "127.0.0.1"][0]
    h.check(server["address"].endswith(":%d" % P1) and literal["address"] == "127.0.0.1:%d" % P2,
            "JSON addresses: %r %r" % (server, literal))

    table = d.ctl("peers")
    h.log("ntsctl peers:\n" + table)
    names = rows(table)
    h.check("localhost" in names, "the configured name is not shown: %r" % names)
    h.check("127.0.0.1" in names, "the literal is not shown as configured: %r" % names)
    h.check(server["address"] not in table,
            "the named server is shown by address without -n:\n%s" % table)
    for p in peers:
        if p["pool"]:
            h.check(p["address"] in names, "pool member %s not by address: %r" %
                    (p["address"], names))

    for flag in ("-n", "--numeric"):
        table = d.ctl(flag, "peers")
        h.log("ntsctl %s peers:\n%s" % (flag, table))
        numeric = rows(table)
        h.check("localhost" not in table, "-n still shows a name:\n%s" % table)
        h.check(sorted(numeric) == sorted(p["address"][:22] for p in d.peers()),
                "-n rows %r are not the addresses" % numeric)

    j = d.ctl_json("peers")
    h.check(all(set(("remote", "address")) <= set(p) for p in j),
            "JSON lost remote/address: %r" % j)
    h.check(any(p["remote"] == "localhost" and p["address"] == server["address"] for p in j),
            "JSON remote/address changed: %r" % j)
    j = h.run_cmd([h.NTSCTL_BIN, "-s", d.sock, "-n", "peers", "--json"])
    h.check(j.returncode == 0 and '"remote":"localhost"' in j.stdout.replace(" ", ""),
            "-n must not change the JSON: %r" % j.stdout[:200])

    for bad in (b"peers numeric numeric\n", b"peers bogus\n"):
        reply, _ = h.ctl_raw(d.sock, bad)
        h.check(reply.startswith(b"error:"), "%r was not refused: %r" % (bad, reply))
    d.proc.check_alive()


h.run(main)
