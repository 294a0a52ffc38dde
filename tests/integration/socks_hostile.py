#!/usr/bin/python3
"""A scripted SOCKS5 server for tests: one listening port per mode, each
misbehaving in one way (or, in mode `relay`, a working CONNECT proxy that
records what each client sent).

    socks_hostile.py --ports-file F [--record F] [--addr 127.0.0.1] MODE...

It binds every MODE to an ephemeral port on ADDR and writes {mode: port} as
JSON to the ports file once all listen.  `--record` appends one JSON line
per handshake: the mode, the methods offered, the RFC 1929 username and
password (when sent) and the CONNECT target.  Standard library only.

Modes (what the server does after reading the client's greeting):
  relay        a real proxy: no authentication or username/password (any),
               CONNECT to the target (IP literal or a name it resolves),
               then relays both ways
  version      method reply with version 4
  socks4       a SOCKS4 rejection (00 5B) instead of a method reply
  nomethod     method 0xFF (no acceptable method)
  badmethod    method 0x01 (GSSAPI), never offered
  authfail     picks username/password, then refuses the credentials
  truncated    after the request: 3 bytes of a reply, then closes
  closed       closes without a method reply
  endless      after the request: a reply with a 255-byte name, then an
               endless stream of bytes
  garbage      after the request: 0xFF, then an endless stream of random bytes
  slow         answers one byte per second (method reply, then reply)
  silent       reads the greeting and never answers
  late         a good reply, 30 s after the request
  rep1..rep8   a failure reply with that REP code
  rep42        an unknown REP code
  atyp         a reply with address type 7
"""
import argparse
import asyncio
import json
import os
import socket
import sys

MODES = ["relay", "version", "socks4", "nomethod", "badmethod", "authfail", "truncated",
         "closed", "endless", "garbage", "slow", "silent", "late", "atyp", "rep42"] + \
        ["rep%d" % i for i in range(1, 9)]

OK_REPLY = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"


class Session:
    def __init__(self, mode, reader, writer, record):
        self.mode = mode
        self.r = reader
        self.w = writer
        self.record = record
        self.seen = {"mode": mode}

    async def greeting(self):
        ver, n = await self.r.readexactly(2)
        methods = await self.r.readexactly(n)
        self.seen["version"] = ver
        self.seen["methods"] = list(methods)
        return methods

    async def userpass(self):
        ver, ulen = await self.r.readexactly(2)
        user = await self.r.readexactly(ulen)
        (plen,) = await self.r.readexactly(1)
        pw = await self.r.readexactly(plen)
        self.seen["auth_version"] = ver
        self.seen["user"] = user.decode("latin-1")
        self.seen["pass"] = pw.decode("latin-1")

    async def request(self):
        ver, cmd, rsv, atyp = await self.r.readexactly(4)
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, await self.r.readexactly(4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, await self.r.readexactly(16))
        else:
            (n,) = await self.r.readexactly(1)
            host = (await self.r.readexactly(n)).decode("latin-1")
        port = int.from_bytes(await self.r.readexactly(2), "big")
        self.seen.update(cmd=cmd, atyp=atyp, host=host, port=port)
        self.save()
        return host, port

    def save(self):
        if self.record:
            with open(self.record, "a") as f:
                f.write(json.dumps(self.seen) + "\n")

    async def send(self, data):
        self.w.write(data)
        await self.w.drain()

    async def accept_method(self, methods):
        """Picks username/password when offered (as Tor does), else none."""
        if 2 in methods:
            await self.send(b"\x05\x02")
            await self.userpass()
            await self.send(b"\x01\x00")
        else:
            await self.send(b"\x05\x00")

    async def run(self):
        methods = await self.greeting()
        m = self.mode
        if m == "silent":
            await self.r.read(1)  # until the client gives up
            return
        if m == "closed":
            return
        if m in ("version", "socks4", "nomethod", "badmethod"):
            await self.send({"version": b"\x04\x00", "socks4": b"\x00\x5b",
                             "nomethod": b"\x05\xff", "badmethod": b"\x05\x01"}[m])
            await self.r.read(1)
            return
        if m == "authfail":
            await self.send(b"\x05\x02")
            await self.userpass()
            self.save()
            await self.send(b"\x01\x01")
            return
        if m == "slow":
            for b in b"\x05\x00":
                await self.send(bytes([b]))
                await asyncio.sleep(1)
            await self.request()
            for b in OK_REPLY:
                await self.send(bytes([b]))
                await asyncio.sleep(1)
            return
        await self.accept_method(methods)
        host, port = await self.request()
        await self.reply(m, host, port)

    async def reply(self, m, host, port):
        if m.startswith("rep"):
            await self.send(bytes([5, int(m[3:]), 0, 1, 0, 0, 0, 0, 0, 0]))
        elif m == "truncated":
            await self.send(b"\x05\x00\x00")
        elif m == "atyp":
            await self.send(b"\x05\x00\x00\x07" + b"\x00" * 8)
            await self.r.read(1)
        elif m == "late":
            await asyncio.sleep(30)
            await self.send(OK_REPLY)
        elif m in ("endless", "garbage"):
            if m == "endless":
                await self.send(b"\x05\x00\x00\x03\xff" + b"n" * 255 + b"\x00\x50")
            else:
                await self.send(b"\xff")
            while True:  # until the client closes
                await self.send(os.urandom(4096) if m == "garbage" else b"\x16" * 4096)
        elif m == "relay":
            await self.relay(host, port)

    async def relay(self, host, port):
        try:
            ur, uw = await asyncio.open_connection(host, port)
        except OSError:
            await self.send(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
            return
        await self.send(OK_REPLY)

        async def pipe(src, dst):
            try:
                while True:
                    data = await src.read(16384)
                    if not data:
                        break
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                try:
                    dst.close()
                except OSError:
                    pass
        await asyncio.gather(pipe(self.r, uw), pipe(ur, self.w))


def handler(mode, record):
    async def handle(reader, writer):
        s = Session(mode, reader, writer, record)
        try:
            await s.run()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except OSError:
                pass
    return handle


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports-file", required=True)
    ap.add_argument("--record")
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("modes", nargs="*")
    a = ap.parse_args()
    modes = a.modes or MODES
    for m in modes:
        if m not in MODES:
            sys.exit("unknown mode %s" % m)
    ports, servers = {}, []
    for m in modes:
        srv = await asyncio.start_server(handler(m, a.record), a.addr, 0)
        ports[m] = srv.sockets[0].getsockname()[1]
        servers.append(srv)
    tmp = a.ports_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ports, f)
    os.rename(tmp, a.ports_file)
    print("socks_hostile: listening: %s" % json.dumps(ports), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
