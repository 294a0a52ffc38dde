"""The benchmark scenarios: what the relay does to each direction.

"up" is client -> server, "down" is server -> client.  Delays and jitter in
seconds; "A±B" is uniform on [A-B, A+B]; loss and spike are per datagram
and per direction.  `jittery` marks the scenarios where the issue's target
is ntsd RMS <= 0.7 x chrony RMS (otherwise <= 1.0 x).
"""

MS = 1e-3


def _both(**kw):
    return {"up": dict(kw), "down": dict(kw)}


SCENARIOS = [
    # "direct": no jitter, no loss, no asymmetry.  The relay holds every
    # datagram a constant 5 ms each way (symmetric, so no offset bias).
    # Forwarding "at once" would instead add the relay's wake-up latency,
    # which on the benchmark VM is ~0.5 ms client->server (the relay sleeps
    # between polls; waking an idle vCPU is slow) but ~0.05 ms back (it is
    # still awake from the request): an asymmetry that biases every client
    # by ~+0.3 ms with a long tail.  Wake-ups later than 2 ms happen ~1 % of
    # the time, so 5 ms (the smallest one-way delay of the other scenarios)
    # lets the relay release on time.  `direct0` (not run by default) is the
    # literal zero-delay relay, to see that effect.
    {"name": "direct",
     "title": "direct (relay only, constant 5 ms each way)",
     "relay": _both(delay=5 * MS),
     "jittery": False},
    {"name": "jitter10",
     "title": "10±2 ms each way",
     "relay": _both(delay=10 * MS, jitter=2 * MS, dist="uniform"),
     "jittery": True},
    {"name": "jitter20-loss",
     "title": "20±10 ms each way, 1 % loss",
     "relay": _both(delay=20 * MS, jitter=10 * MS, dist="uniform", loss=0.01),
     "jittery": True},
    {"name": "asym5-15",
     "title": "5 ms out / 15 ms back (asymmetric)",
     "relay": {"up": {"delay": 5 * MS}, "down": {"delay": 15 * MS}},
     "jittery": False},
    {"name": "spikes",
     "title": "10±2 ms each way, 5 % of packets +100 ms",
     "relay": _both(delay=10 * MS, jitter=2 * MS, dist="uniform", spike=0.05,
                    spike_delay=100 * MS),
     "jittery": True},
]

EXTRA = [
    {"name": "direct0",
     "title": "relay with 0 added delay (shows the relay's wake-up asymmetry)",
     "relay": _both(),
     "jittery": False},
]

BY_NAME = {s["name"]: s for s in SCENARIOS + EXTRA}


def describe_direction(d):
    """Short text for one direction's relay settings."""
    parts = []
    delay = d.get("delay", 0.0)
    jit = d.get("jitter", 0.0)
    if jit:
        sym = "±" if d.get("dist", "uniform") == "uniform" else "σ"
        parts.append("%g%s%g ms" % (delay / MS, sym, jit / MS))
    else:
        parts.append("%g ms" % (delay / MS))
    if d.get("loss"):
        parts.append("%g %% loss" % (d["loss"] * 100))
    if d.get("spike"):
        parts.append("%g %% +%g ms" % (d["spike"] * 100, d.get("spike_delay", 0) / MS))
    return ", ".join(parts)
