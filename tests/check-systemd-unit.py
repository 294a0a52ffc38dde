#!/usr/bin/python3
"""Checks what `make install` installs and the systemd unit among it
(docs/systemd.md, "Checks").

usage: check-systemd-unit.py BUILD_DIR SOURCE_DIR MAX_EXPOSURE CONFDIR EXPECTED...

  * `cmake --install BUILD_DIR` into a temporary DESTDIR installs exactly the
    EXPECTED absolute paths; a second install keeps a changed configuration;
  * the installed sample configuration passes `ntsd --check`, and the state
    files it names are in the unit's StateDirectory;
  * `systemd-analyze verify` says nothing about the installed unit (its
    ExecStart pointed at the installed binary under DESTDIR), and does
    complain about a copy with a misspelt key (so silence means something);
  * the unit's ExecStart runs in the foreground as its User= with the
    configuration in its ConfigurationDirectory, Type=notify, NotifyAccess=main;
  * every system call of ntsd's own filters (src/daemon/sandbox.c) and of
    its set-up is allowed by the unit's SystemCallFilter=;
  * `systemd-analyze security --offline=true` rates the unit's exposure at
    most MAX_EXPOSURE (and prints chrony's and NTPsec's units' beside it,
    when installed).
Exit 77 (skip) without systemd-analyze.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Called before ntsd's filter is loaded, so absent from sandbox.c's lists:
# capabilities trimmed (capset), the filter itself (seccomp, prctl).
SETUP_CALLS = {"capset", "capget", "prctl", "seccomp", "setgroups", "setresuid", "setresgid"}
# In sandbox.c's argument rules rather than its name lists.
ARG_RULE_CALLS = {"ioctl", "prctl", "socket", "clone"}


def fail(msg):
    print("FAIL: %s" % msg, flush=True)
    sys.exit(1)


def run(cmd, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def install(build, destdir):
    env = dict(os.environ, DESTDIR=destdir)
    r = run(["cmake", "--install", build], env=env)
    if r.returncode != 0:
        fail("cmake --install: %s" % (r.stderr or r.stdout))
    return r.stdout


def check_files(destdir, expected):
    found = set()
    for root, _, files in os.walk(destdir):
        for f in files:
            found.add("/" + os.path.relpath(os.path.join(root, f), destdir))
    if found != set(expected):
        fail("installed %s; expected %s" % (sorted(found), sorted(expected)))
    print("installed: %s" % " ".join(sorted(found)))


def unit_settings(text):
    """[(key, value)] of the unit, in order."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.append((k.strip(), v.strip()))
    return out


def one(settings, key):
    vals = [v for k, v in settings if k == key]
    if len(vals) != 1:
        fail("the unit has %d %s= lines, expected one" % (len(vals), key))
    return vals[0]


def check_config(destdir, confdir, settings):
    conf = destdir + confdir + "/ntsd.conf"
    sbin = one(settings, "ExecStart").split()[0]
    r = run([destdir + sbin, "--check", "-c", conf])
    if r.returncode != 0:
        fail("ntsd --check on the installed sample: %s" % (r.stderr or r.stdout))
    state = "/var/lib/" + one(settings, "StateDirectory") + "/"
    with open(conf) as f:
        for line in f:
            for path in re.findall(r"(/var/\S+)", line.split("#")[0]):
                if not path.startswith(state):
                    fail("the sample configuration writes %s, outside StateDirectory %s" % (
                        path, state))


def check_exec(settings, confdir):
    argv = one(settings, "ExecStart").split()
    user = one(settings, "User")
    if one(settings, "Type") != "notify" or one(settings, "NotifyAccess") != "main":
        fail("the unit is not Type=notify with NotifyAccess=main")
    if "-n" not in argv:
        fail("ExecStart without -n: a detached ntsd is not the main process systemd knows")
    if "-u" not in argv or argv[argv.index("-u") + 1] != user:
        fail("ExecStart without -u %s (the daemon would keep CAP_NET_BIND_SERVICE)" % user)
    reload = one(settings, "ExecReload").split()
    if reload[1:] != ["-HUP", "$MAINPID"] or not reload[0].endswith("/kill"):
        fail("ExecReload is not `kill -HUP $MAINPID`: %r" % reload)
    conf = argv[argv.index("-c") + 1] if "-c" in argv else None
    want = "/etc/" + one(settings, "ConfigurationDirectory") + "/ntsd.conf"
    if conf != want or confdir + "/ntsd.conf" != want:
        fail("ExecStart reads %s, the install puts %s/ntsd.conf, the unit's directory is %s" % (
            conf, confdir, want))


def verify(unit_text, destdir, tmp):
    path = os.path.join(tmp, "ntsd.service")
    sbin = re.search(r"^ExecStart=(\S+)", unit_text, re.M).group(1)
    with open(path, "w") as f:
        f.write(unit_text.replace("ExecStart=" + sbin, "ExecStart=" + destdir + sbin))
    r = run(["systemd-analyze", "verify", path])
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
        fail("systemd-analyze verify: rc %d: %s%s" % (r.returncode, r.stdout, r.stderr))
    bad = os.path.join(tmp, "bad", "ntsd.service")
    os.makedirs(os.path.dirname(bad))
    with open(path) as f, open(bad, "w") as g:
        g.write(f.read().replace("ProtectSystem=", "ProtectSytem="))
    r = run(["systemd-analyze", "verify", bad])
    if not (r.stdout + r.stderr).strip():
        fail("systemd-analyze verify says nothing about a misspelt key: the check is blind")
    print("systemd-analyze verify: no complaint")
    return path


def syscall_groups():
    out = run(["systemd-analyze", "syscall-filter"]).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line.strip()
            groups[cur] = []
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].append(line.strip())
    return groups


def expand(groups, names):
    res = set()
    for n in names:
        if n.startswith("@"):
            if n not in groups:
                fail("unknown system call group %s" % n)
            res |= expand(groups, groups[n])
        else:
            res.add(n)
    return res


def check_syscalls(settings, source):
    groups = syscall_groups()
    allowed = set()
    for k, v in settings:
        if k != "SystemCallFilter":
            continue
        if v.startswith("~"):
            allowed -= expand(groups, v[1:].split())
        else:
            allowed |= expand(groups, v.split())
    with open(os.path.join(source, "src", "daemon", "sandbox.c")) as f:
        text = f.read()
    lists = re.findall(r"static const char \*const \w+_calls\[\] = \{(.*?)\};", text, re.S)
    if len(lists) < 3:
        fail("cannot find sandbox.c's system call lists")
    ours = set()
    for body in lists:
        body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
        ours |= set(re.findall(r'"(\w+)"', body))
    ours |= SETUP_CALLS | ARG_RULE_CALLS
    known = expand(groups, [g for g in groups])
    missing = sorted(c for c in ours if c not in allowed and c in known)
    if missing:
        fail("ntsd uses system calls the unit's SystemCallFilter refuses: %s" % missing)
    print("SystemCallFilter allows all %d calls of ntsd's filters and set-up" % len(ours))


def exposure(path):
    r = run(["systemd-analyze", "security", "--offline=true", path])
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    if not m:
        fail("systemd-analyze security printed no exposure level: %s%s" % (r.stdout, r.stderr))
    return float(m.group(1))


def main():
    if len(sys.argv) < 6:
        fail("usage: check-systemd-unit.py BUILD SOURCE MAX_EXPOSURE CONFDIR EXPECTED...")
    build, source, max_exp, confdir = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    expected = sys.argv[5:]
    if shutil.which("systemd-analyze") is None:
        print("SKIP: systemd-analyze not installed (scripts/install-deps)")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="ntsd-unit-")
    try:
        destdir = os.path.join(tmp, "root")
        install(build, destdir)
        check_files(destdir, expected)
        conf = destdir + confdir + "/ntsd.conf"
        with open(conf, "a") as f:
            f.write("# changed by its administrator\n")
        out = install(build, destdir)
        with open(conf) as f:
            if not f.read().endswith("# changed by its administrator\n"):
                fail("a second install replaced the existing configuration")
        if "Kept: " not in out:
            fail("a second install did not say it kept the configuration")
        unit = [p for p in expected if p.endswith("/ntsd.service")][0]
        with open(destdir + unit) as f:
            text = f.read()
        settings = unit_settings(text)
        check_exec(settings, confdir)
        check_config(destdir, confdir, settings)
        path = verify(text, destdir, tmp)
        check_syscalls(settings, source)
        score = exposure(path)
        print("exposure of ntsd.service: %.1f (at most %.1f)" % (score, max_exp))
        peers = {"chrony": "/lib/systemd/system/chrony.service",
                 "NTPsec": os.path.join(source, ".deps/ntpsec/lib/systemd/system/ntpsec.service")}
        for name, p in peers.items():
            if os.path.exists(p):
                print("exposure of %s's unit: %.1f" % (name, exposure(p)))
        if score > max_exp:
            fail("the unit's exposure rose to %.1f, above %.1f (docs/systemd.md)" % (
                score, max_exp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


main()
