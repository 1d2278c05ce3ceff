#!/usr/bin/env python3
"""Regenerate packaging/freebsd/Makefile.crates from Cargo.lock off FreeBSD.

The port's `make cargo-crates` does the same on FreeBSD; this one exists so a
Linux checkout can keep the list in step (tests/packaging.rs compares them).
"""
import pathlib
import re

top = pathlib.Path(__file__).resolve().parent.parent
lock = (top / "Cargo.lock").read_text()
crates = set()
for pkg in lock.split("[[package]]")[1:]:
    fields = dict(re.findall(r'^(\w+) = "([^"]*)"', pkg, re.M))
    if fields.get("source", "").startswith("registry+"):
        crates.add(f"{fields['name']}-{fields['version']}")
out = top / "packaging/freebsd/Makefile.crates"
head = [l for l in out.read_text().splitlines() if l.startswith("#")]
names = sorted(crates)
body = "CARGO_CRATES=\t" + " \\\n\t\t".join(names) + "\n"
out.write_text("\n".join(head) + "\n" + body)
print(f"{out.relative_to(top)}: {len(names)} crates")
