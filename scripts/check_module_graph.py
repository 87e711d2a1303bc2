#!/usr/bin/env python3
"""Checks that every module of hloop includes only the headers of the modules it
depends on (docs/design.md, "Modules").

The graph comes from the build: CMake's hloop_module() writes one line per module
to BUILD/module_graph.txt:  NAME DIR[,DIR...] DEP[,DEP...]  ('-' for none).

Rules, for every file under src/ that belongs to a module:
  - a quoted include "a/b.h" whose directory belongs to module M is allowed only if
    M is the file's own module or one it depends on, directly or not;
  - production files (not *_test.cc) never include test-only code (src/testing/).
Unit tests (*_test.cc) may include any module and src/testing/. src/cli (the
binary) may include every module.

Usage:
  check_module_graph.py GRAPH [--root SRC]   check the tree (default: ./src)
  check_module_graph.py GRAPH --self-test    prove the check fails on an upward
                                             include injected into a copy of src/
Exit status: 0 clean, 1 violations (each printed as FILE:LINE: message), 2 usage.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
TEST_ONLY = "testing"
BINARY_DIRS = {"cli"}  # the hloop binary: may include every module


def read_graph(path):
    dirs, deps = {}, {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                sys.exit(f"{path}:{n}: expected NAME DIRS DEPS, got {line.strip()!r}")
            name, dlist, dep = parts
            for d in dlist.split(","):
                if d in dirs:
                    sys.exit(f"{path}:{n}: directory {d} belongs to {dirs[d]} and {name}")
                dirs[d] = name
            deps[name] = [] if dep == "-" else dep.split(",")
    return dirs, deps


def closure(deps):
    """Module -> set of modules it may see (itself and everything below)."""
    seen = {}

    def visit(m, stack):
        if m in seen:
            return seen[m]
        if m in stack:
            sys.exit("module graph has a cycle: " + " -> ".join(stack + [m]))
        out = {m}
        for d in deps.get(m, []):
            out |= visit(d, stack + [m])
        seen[m] = out
        return out

    for m in deps:
        visit(m, [])
    return seen


def owner(path, dirs):
    """The module whose directory holds `path` (longest match), or None."""
    best = None
    for d, m in dirs.items():
        if path == d or path.startswith(d + "/"):
            if best is None or len(d) > len(best[0]):
                best = (d, m)
    return best[1] if best else None


def check(graph, root):
    dirs, deps = read_graph(graph)
    sees = closure(deps)
    errors = []
    for dirpath, _, files in os.walk(root):
        for fname in sorted(files):
            if not fname.endswith((".h", ".cc")):
                continue
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, root)
            top = rel.split("/")[0]
            is_test = fname.endswith("_test.cc")
            if top == TEST_ONLY or is_test or top in BINARY_DIRS:
                mine = None  # may see every module
            else:
                mine = owner(os.path.dirname(rel), dirs)
                if mine is None:
                    errors.append(f"{rel}: not in any module's directory (add it to CMakeLists.txt)")
                    continue
            with open(full, errors="replace") as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m or "/" not in m.group(1):
                        continue
                    inc = m.group(1)
                    if inc.split("/")[0] == TEST_ONLY:
                        if not (is_test or top == TEST_ONLY):
                            errors.append(f"{rel}:{n}: production code includes test-only {inc}")
                        continue
                    target = owner(os.path.dirname(inc), dirs)
                    if target is None or mine is None or target in sees[mine]:
                        continue
                    errors.append(f"{rel}:{n}: module {mine} includes {inc} of module {target}, "
                                  f"which it does not depend on (it sees: "
                                  f"{', '.join(sorted(sees[mine]))})")
    return errors


def self_test(graph, root):
    """The check must pass on the tree and fail on each injected violation."""
    if check(graph, root):
        print("self-test: the tree itself is not clean; run the check first")
        return 1
    dirs, deps = read_graph(graph)
    sees = closure(deps)
    # The lowest module (sees only itself) and one that sits above it.
    low = min(deps, key=lambda m: len(sees[m]))
    high = next(m for m in deps if low in sees[m] and m != low)
    low_dir = next(d for d, m in dirs.items() if m == low)
    high_dir = next(d for d, m in dirs.items() if m == high)
    high_header = next(f for f in sorted(os.listdir(os.path.join(root, high_dir))) if f.endswith(".h"))
    cases = [
        (f"{low_dir}/zz_upward.cc", f'#include "{high_dir}/{high_header}"\n', f"module {low} includes"),
        (f"{low_dir}/zz_testonly.h", '#include "testing/temp_dir.h"\n', "test-only"),
    ]
    failures = 0
    for path, text, expect in cases:
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "src")
            shutil.copytree(root, copy)
            with open(os.path.join(copy, path), "w") as f:
                f.write(text)
            r = subprocess.run([sys.executable, __file__, graph, "--root", copy],
                               capture_output=True, text=True)
            ok = r.returncode == 1 and expect in r.stdout and path in r.stdout
            print(f"self-test: {path} with {text.strip()}: "
                  f"{'rejected as expected' if ok else 'NOT REJECTED'}")
            if not ok:
                print(r.stdout + r.stderr)
                failures += 1
    return 1 if failures else 0


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    graph = argv[1]
    root = "src"
    if "--root" in argv:
        root = argv[argv.index("--root") + 1]
    if "--self-test" in argv:
        return self_test(graph, root)
    errors = check(graph, root)
    for e in errors:
        print(e)
    print(f"module graph: {len(errors)} violation(s)" if errors else "module graph: clean")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
