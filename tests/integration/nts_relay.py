"""An on-path UDP relay for NTS tests, and the NTS packet helpers it uses.

The relay listens on one loopback address and forwards to another, in a
thread with a bounded select loop; a mode, read per request, decides what
it does to the exchange (pass, drop, or one of the hostile modes that
test_nts_hostile.py describes).  Loopback only: both addresses are given
by the test and lie in 127.0.0.0/8 of the test's private namespace.
"""
import os
import select
import socket
import struct
import threading
import time

import harness as h

EF_UID, EF_COOKIE, EF_PLACEHOLDER, EF_AUTH = 0x0104, 0x0204, 0x0304, 0x0404
JAR = 8

try:
    from cryptography.hazmat.primitives import cmac
    from cryptography.hazmat.primitives.ciphers import algorithms
except ImportError:  # then requests carry a random tag
    cmac = None


def siv_tag(key, ads):
    """AES-SIV (RFC 5297) of an empty plaintext: the synthetic IV alone,
    S2V over the associated data with the first half of the key.  Built on
    CMAC because some versions' AESSIV refuse an empty plaintext."""
    def mac(m):
        c = cmac.CMAC(algorithms.AES(key[:len(key) // 2]))
        c.update(m)
        return c.finalize()

    def dbl(b):
        n = int.from_bytes(b, "big") << 1
        return (n ^ ((1 << 128) | 0x87) if n >> 128 else n).to_bytes(16, "big")

    def xor(a, b):
        return bytes(x ^ y for x, y in zip(a, b))
    d = mac(b"\0" * 16)
    for a in ads:
        d = xor(dbl(d), mac(a))
    return mac(xor(dbl(d), b"\x80" + b"\0" * 15))


def nts_request(key, cookie, flip_key_bit=False):
    """An NTS-protected client request (RFC 8915 5.7): header, Unique
    Identifier, Cookie, and an Authenticator whose tag covers all before it
    with a 16-byte nonce.  Returns (packet, transmit timestamp)."""
    xmt = os.urandom(8)
    pkt = b"\x23" + b"\x00" * 39 + xmt
    pkt += struct.pack("!HH", EF_UID, 36) + os.urandom(32)
    pkt += struct.pack("!HH", EF_COOKIE, 4 + len(cookie)) + cookie
    nonce = os.urandom(16)
    if cmac is not None:
        k = bytearray(key)
        if flip_key_bit:
            k[0] ^= 1
        tag = siv_tag(bytes(k), [pkt, nonce])
    else:
        tag = os.urandom(16)
    pkt += struct.pack("!HHHH", EF_AUTH, 4 + 4 + 16 + len(tag), 16, len(tag)) + nonce + tag
    return pkt, xmt


# --------------------------------------------------------------------------
# Packets
# --------------------------------------------------------------------------

def ext_fields(pkt):
    """[(offset, type, length)] of the extension fields after the header; stops
    at the first one that does not parse."""
    out, off = [], 48
    while off + 4 <= len(pkt):
        t, n = struct.unpack("!HH", pkt[off:off + 4])
        if n < 4 or off + n > len(pkt):
            break
        out.append((off, t, n))
        off += n
    return out


def find_ef(pkt, etype):
    for off, t, n in ext_fields(pkt):
        if t == etype:
            return off, n
    return None


def uid_of(pkt):
    f = find_ef(pkt, EF_UID)
    return pkt[f[0] + 4:f[0] + f[1]] if f else None


def flip_auth(resp, i):
    """Flips one bit in the Authenticator EF, at a place chosen by i."""
    f = find_ef(resp, EF_AUTH)
    if f is None:
        raise ValueError("response without an Authenticator EF")
    off, n = f
    # EF type, EF length, nonce length, ciphertext length, nonce, tag, last byte.
    places = [1, 3, 5, 7, 8 + 5, 24 + 3, n - 1]
    pos = off + places[i % len(places)]
    b = bytearray(resp)
    b[pos] ^= 1 << (i % 8)
    return bytes(b), "bit %d of byte %d (EF byte %d of %d)" % (
        i % 8, pos, pos - off, n)


def truncate(resp, i):
    f = find_ef(resp, EF_AUTH)
    if f is None:
        raise ValueError("response without an Authenticator EF")
    variants = [("last 1 byte cut", len(resp) - 1),
                ("last 4 bytes cut", len(resp) - 4),
                ("last 17 bytes cut", len(resp) - 17),
                ("cut at the EF boundary before the Authenticator", f[0]),
                ("cut to the 48-byte header", 48)]
    what, n = variants[i % len(variants)]
    return resp[:n], "%s (%d of %d bytes)" % (what, n, len(resp))


def forged_nak(req, uid):
    """A NAK for `req`: kiss-o'-death header (leap 3, stratum 0, refid NTSN,
    origin = the request's transmit timestamp) with `uid` as its only EF."""
    now = h.float_to_ts(time.time())
    hdr = h.HDR.pack((3 << 6) | (4 << 3) | 4, 0, req[2], -20, 0, 0, b"NTSN", 0,
                     struct.unpack("!Q", req[40:48])[0], now, now)
    return hdr + struct.pack("!HH", EF_UID, 4 + len(uid)) + uid


# --------------------------------------------------------------------------
# The relay
# --------------------------------------------------------------------------

class Relay:
    """A UDP relay on `listen` (addr, port) forwarding to `upstream`, in a
    thread with a bounded select loop.  `mode` is read per request; the
    response is treated by the mode its request was relayed in."""

    MODES = ("pass", "replay", "flip", "forged-nak", "truncate", "duplicate", "inject",
             "nak-ahead", "drop")

    def __init__(self, listen, upstream):
        self.upstream = upstream
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.lsock.bind(listen)
        self.usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.usock.bind((listen[0], 0))
        self.lock = threading.Lock()
        self.mode = "pass"
        self.requests = {m: 0 for m in self.MODES}   # requests relayed per mode
        self.hostile = {m: 0 for m in self.MODES}    # hostile datagrams sent per mode
        self.pending = {}                            # request xmt -> (addr, mode, i, t)
        self.last_good = None                        # last authentic non-NAK response
        self.last_uid = None                         # UID of the previous request
        self.strays = 0
        self.forwarded = 0      # requests sent to the server
        self.cookies_asked = 0  # 1 + placeholders, summed over them
        self.notes = []
        self.error = None
        self.stopping = False
        self.t = threading.Thread(target=self._run, name="relay", daemon=True)
        self.t.start()

    def set_mode(self, mode):
        assert mode in self.MODES
        with self.lock:
            self.mode = mode
        h.log("relay: mode %s" % mode)

    def count(self, mode):
        with self.lock:
            return self.requests[mode]

    def sent_hostile(self, mode):
        with self.lock:
            return self.hostile[mode]

    def in_flight(self, modes):
        """Forwarded requests of these modes still awaiting a response (less
        than 2 s old: older ones were lost)."""
        now = time.monotonic()
        with self.lock:
            return sum(1 for (_, m, _, t) in self.pending.values()
                       if m in modes and now - t < 2.0)

    def stop(self):
        self.stopping = True
        self.t.join(timeout=3)
        self.lsock.close()
        self.usock.close()

    def _note(self, msg):
        with self.lock:
            self.notes.append(msg)
            del self.notes[:-50]

    def _run(self):
        try:
            while not self.stopping:
                rd, _, _ = select.select([self.lsock, self.usock], [], [], 0.1)
                for s in rd:
                    try:
                        data, addr = s.recvfrom(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:  # e.g. ICMP unreachable while the server is down
                        continue
                    if s is self.lsock:
                        self._request(data, addr)
                    else:
                        self._response(data)
                # Forget requests that were never answered.
                now = time.monotonic()
                with self.lock:
                    for k in [k for k, v in self.pending.items() if now - v[3] > 10]:
                        del self.pending[k]
        except Exception as e:  # reported by the main thread
            self.error = "%s: %s" % (type(e).__name__, e)

    def _request(self, req, addr):
        if len(req) < 48:
            return
        with self.lock:
            mode = self.mode
            i = self.requests[mode]
            self.requests[mode] += 1
            prev_uid, self.last_uid = self.last_uid, uid_of(req)
            last_good = self.last_good
        if mode == "replay":
            if last_good is None:
                raise RuntimeError("replay mode before any authentic response")
            self.lsock.sendto(last_good, addr)
            with self.lock:
                self.hostile[mode] += 1
            return
        if mode == "drop":
            return
        if mode == "forged-nak":
            uid = os.urandom(32) if i % 2 == 0 or prev_uid is None else prev_uid
            self.lsock.sendto(forged_nak(req, uid), addr)
            with self.lock:
                self.hostile[mode] += 1
            self._note("forged NAK with %s UID" % ("a random" if uid != prev_uid
                                                   else "the previous request's"))
            return
        if mode == "nak-ahead":
            self.lsock.sendto(forged_nak(req, uid_of(req)), addr)
            with self.lock:
                self.hostile[mode] += 1
        asked = 1 + sum(1 for _, t, _ in ext_fields(req) if t == EF_PLACEHOLDER)
        with self.lock:
            self.pending[req[40:48]] = (addr, mode, i, time.monotonic())
            self.forwarded += 1
            self.cookies_asked += min(asked, JAR)
        self.usock.sendto(req, self.upstream)

    def _response(self, resp):
        if len(resp) < 48:
            return
        with self.lock:
            entry = self.pending.pop(resp[24:32], None)
            if entry is None:
                self.strays += 1
                return
        addr, mode, i, _ = entry
        if mode == "pass":
            if resp[1] != 0:  # not a kiss (a NAK passes through, but is not replayed)
                with self.lock:
                    self.last_good = resp
            self.lsock.sendto(resp, addr)
            return
        if mode == "nak-ahead":
            self.lsock.sendto(resp, addr)
            return
        if mode == "duplicate":
            self.lsock.sendto(resp, addr)
            self.lsock.sendto(resp, addr)
            with self.lock:
                self.hostile[mode] += 1
            return
        if mode == "inject":
            with self.lock:
                stale, self.last_good = self.last_good, resp
            self.lsock.sendto(stale, addr)
            self.lsock.sendto(resp, addr)
            with self.lock:
                self.hostile[mode] += 1
            return
        if mode == "flip":
            out, what = flip_auth(resp, i)
        elif mode == "truncate":
            out, what = truncate(resp, i)
        else:
            raise RuntimeError("relay: unexpected mode %r for a response" % mode)
        self._note("%s: %s" % (mode, what))
        self.lsock.sendto(out, addr)
        with self.lock:
            self.hostile[mode] += 1
