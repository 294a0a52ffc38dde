#!/usr/bin/env python3
"""The man pages (man/*.[58]) against mandoc and against the programs.

  check-man.py lint SRCDIR
      mandoc -Tlint -Wstyle on every page: no message at all, except the
      two that depend on the machine rather than the page (a referenced
      page not installed here, an outdated mandoc.db).  Exit 77 without
      mandoc.
  check-man.py sync SRCDIR NTSD NTSCTL
      every option `--help` prints is in the page's SYNOPSIS and options
      list, and every option the page lists is in `--help`; ntsctl's
      commands alike; ntsd.conf(5)'s directive list is what
      `ntsd --list-directives=mdoc` prints (scripts/update-directive-table
      rewrites it).
"""
import glob
import os
import re
import shutil
import subprocess
import sys

MACHINE_NOISE = ("referenced manual not found", "mandoc.db")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def lint(src):
    if not shutil.which("mandoc"):
        print("SKIP: no mandoc (scripts/install-deps installs it)")
        sys.exit(77)
    pages = sorted(glob.glob(os.path.join(src, "man", "*.[58]")))
    if len(pages) < 3:
        fail("expected ntsd.8, ntsd.conf.5 and ntsctl.8 in man/, found %s" % pages)
    for page in pages:
        r = subprocess.run(["mandoc", "-Tlint", "-Wstyle", page], capture_output=True,
                           text=True)
        msgs = [l for l in (r.stdout + r.stderr).splitlines()
                if l and not any(n in l for n in MACHINE_NOISE)]
        for m in msgs:
            fail(m)
        print("%s: %d message(s)" % (os.path.basename(page), len(msgs)))


def help_options(text):
    """Every -x and --long in --help, outside `quoted` examples."""
    text = re.sub(r"`[^`]*`", "", text)
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])(?![\w-])", text))


def help_commands(text):
    """ntsctl: the words in the "commands:" block."""
    block = text.split("commands:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1) for m in re.finditer(r"^  ([a-z]+)\s", block, re.M)}


def fl_words(args):
    """The options of the Fl macros on one mdoc line: `Fl nxd` is -n -x -d,
    `Fl \\-check` is --check."""
    out, in_fl = set(), False
    for w in args.replace('"', "").split():
        if re.fullmatch(r"[A-Z][a-z][a-z]?", w):  # a macro: Fl, Ar, Op, Ns ...
            in_fl = w == "Fl"
            continue
        if not in_fl or w in ("|", ",", "[", "]"):
            continue
        w = w.replace("\\-", "-").replace("\\&", "")
        if w.startswith("-"):
            out.add("-" + w)
        elif re.fullmatch(r"[a-zA-Z]+", w):
            out.update("-" + c for c in w)
    return out


def sections(page):
    secs, name = {}, None
    for line in open(page, encoding="utf-8"):
        if line.startswith(".Sh "):
            name = line[4:].strip().strip('"')
            secs[name] = []
        elif name:
            secs[name].append(line.rstrip("\n"))
    return secs


def page_options(page):
    """(options in SYNOPSIS, options of the `.It Fl` list in DESCRIPTION,
    pairs of spellings of one option from that list)."""
    secs = sections(page)
    syn = set()
    for line in secs.get("SYNOPSIS", []):
        if line.startswith("."):
            syn |= fl_words(line[1:])
    listed, pairs = set(), []
    for line in secs.get("DESCRIPTION", []):
        if line.startswith(".It Fl"):
            spell = fl_words(line[1:])
            listed |= spell
            pairs.append(spell)
    return syn, listed, pairs


def page_commands(page):
    return {l.split()[2] for l in sections(page).get("DESCRIPTION", [])
            if l.startswith(".It Cm ")}


def compare(name, helped, page):
    syn, listed, pairs = page_options(page)
    for o in sorted(helped - listed):
        fail("%s: %s is in --help but not in the man page's options list" % (name, o))
    for o in sorted(listed - helped):
        fail("%s: %s is in the man page's options list but not in --help" % (name, o))
    for o in sorted(syn - helped):
        fail("%s: %s is in the man page's SYNOPSIS but not in --help" % (name, o))
    for spell in pairs:
        if not spell & syn:
            fail("%s: %s is not in the man page's SYNOPSIS" % (name, "/".join(sorted(spell))))
    print("%s: %d options in --help, %d in the man page" % (name, len(helped), len(listed)))


def run_help(binary):
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        fail("%s --help: exit %d" % (binary, r.returncode))
    return r.stdout


def directive_list(src, ntsd):
    page = os.path.join(src, "man", "ntsd.conf.5")
    text = open(page, encoding="utf-8").read()
    m = re.search(r'^\.\\" BEGIN directive list[^\n]*\n(.*?)^\.\\" END directive list',
                  text, re.S | re.M)
    if not m:
        fail("ntsd.conf.5: no BEGIN/END directive list markers")
        return
    r = subprocess.run([ntsd, "--list-directives=mdoc"], capture_output=True, text=True,
                       timeout=10)
    if r.returncode != 0 or not r.stdout:
        fail("ntsd --list-directives=mdoc: exit %d" % r.returncode)
    elif m.group(1) != r.stdout:
        fail("ntsd.conf.5: the directive list differs from `ntsd --list-directives=mdoc`; "
             "run scripts/update-directive-table")
    else:
        print("ntsd.conf.5: directive list as ntsd prints it (%d lines)"
              % r.stdout.count("\n"))


def sync(src, ntsd, ntsctl):
    man = os.path.join(src, "man")
    compare("ntsd", help_options(run_help(ntsd)), os.path.join(man, "ntsd.8"))
    text = run_help(ntsctl)
    compare("ntsctl", help_options(text), os.path.join(man, "ntsctl.8"))
    helped, paged = help_commands(text), page_commands(os.path.join(man, "ntsctl.8"))
    for c in sorted(helped ^ paged):
        fail("ntsctl: command %s is in %s only" % (c, "--help" if c in helped else "the man page"))
    directive_list(src, ntsd)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "lint":
        lint(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "sync":
        sync(*sys.argv[2:])
    else:
        sys.exit(__doc__)
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
