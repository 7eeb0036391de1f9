#!/usr/bin/env python3
"""Import circles between sibling modules of each crate in crates/*.

Module `a` uses its sibling `b` when a file under `a` names a path into `b`: `crate::b::...`,
`super::b::...`, or the same inside a `use` tree. A circle is a set of siblings that reach each
other that way; a parent and its own children never count (the parent declares them). Comments
and string literals are ignored, and so is test code (`#[cfg(test)]` modules, inline or in
their own file) unless --tests is given.

  check-module-cycles.py [--tests] [CRATE_DIR ...]   (default: every crates/*)

Prints each circle with one reference per edge; exits 1 when there is one.
"""
import pathlib
import re
import sys
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
# `mod name;` or `mod name {`, with the attributes and visibility before it.
MOD = re.compile(
    rf"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?\bmod\s+({IDENT})\s*([;{{])"
)
RAW_STRING = re.compile(r'b?r(#*)"')
CHAR = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'")


def strip(text):
    """`text` with comments and the insides of string and char literals blanked, offsets kept."""
    out, i, n = list(text), 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        raw = RAW_STRING.match(text, i)
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + raw.group(1)
            j = text.find(close, raw.end())
            j = n if j < 0 else j
            blank(raw.end(), j)
            i = j + len(close)
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        elif text[i] == "'" and (char := CHAR.match(text, i)):
            blank(i + 1, char.end() - 1)
            i = char.end()
        else:
            i += 1
    return "".join(out)


def use_paths(tree):
    """The paths of a `use` tree: `a::{b, c::{d as e, *}}` gives a::b, a::c::d and a::c::*."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    paths = []

    def walk(s, prefix):
        parts, depth, start = [], 0, 0
        for k, ch in enumerate(s):
            depth += {"{": 1, "}": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        for part in filter(None, parts):
            brace = part.find("{")
            if brace >= 0:
                head = [x for x in part[:brace].split("::") if x]
                walk(part[brace + 1 : part.rfind("}")], prefix + head)
            else:
                paths.append(prefix + [x for x in part.split("::") if x])

    walk(tree, [])
    return paths


def is_test(attributes):
    """Whether the attributes before a `mod` make it test code."""
    return re.search(r"#\[cfg\(test\)\]", attributes) is not None


def inline_modules(text):
    """(start, end, name, is test) of every `mod name { ... }` in `text`."""
    blocks = []
    for m in MOD.finditer(text):
        if m.group(3) == "{":
            depth, j = 1, m.end()
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            blocks.append((m.start(2), j, m.group(2), is_test(m.group(1))))
    return blocks


def module_files(src):
    """Module path (a tuple) -> (file, is test code) for the library, else the binary; and the
    paths of the modules written inline (`mod name { ... }`)."""
    root = src / "lib.rs" if (src / "lib.rs").exists() else src / "main.rs"
    if not root.exists():
        return {}, set()
    mods, inline, todo = {(): (root, False)}, set(), [((), root, False)]
    while todo:
        path, file, test = todo.pop()
        base = file.parent if file.name in ("lib.rs", "main.rs", "mod.rs") else file.with_suffix("")
        text = strip(file.read_text())
        blocks = inline_modules(text)
        for start, _, name, _ in blocks:
            outer = sorted(b for b in blocks if b[0] < start < b[1])
            inline.add(path + tuple(b[2] for b in outer) + (name,))
        for m in MOD.finditer(text):
            if m.group(3) != ";":
                continue
            name, child_test = m.group(2), test or is_test(m.group(1))
            for cand in (base / f"{name}.rs", base / name / "mod.rs"):
                if cand.exists():
                    mods[path + (name,)] = (cand, child_test)
                    todo.append((path + (name,), cand, child_test))
                    break
    return mods, inline


def references(module, text, tests):
    """(module the reference sits in, absolute target segments, offset) of every `crate::` and
    `super::` path in `text`, the file of `module`."""
    blocks = inline_modules(text)

    def where(pos):
        inner = sorted(b for b in blocks if b[0] <= pos < b[1])
        if not tests and any(b[3] for b in inner):
            return None
        return module + tuple(b[2] for b in inner)

    def absolute(here, segs):
        if segs[0] == "crate":
            return segs[1:]
        up = 0
        while up < len(segs) and segs[up] == "super":
            up += 1
        if up == 0 or up > len(here):
            return None
        return list(here[: len(here) - up]) + segs[up:]

    found, in_use = [], []
    for m in re.finditer(r"\buse\s+([^;]*);", text):
        in_use.append((m.start(), m.end()))
        here = where(m.start())
        for segs in use_paths(m.group(1)) if here is not None else []:
            if segs and (target := absolute(here, segs)) is not None:
                found.append((here, target, m.start()))
    for m in re.finditer(rf"\b(crate|super)((?:::{IDENT})+)", text):
        here = where(m.start())
        if here is None or any(a <= m.start() < b for a, b in in_use):
            continue
        target = absolute(here, [m.group(1)] + m.group(2).split("::")[1:])
        if target is not None:
            found.append((here, target, m.start()))
    return found


def strongly_connected(edges):
    """Tarjan: the sets of more than one node that all reach each other."""
    nodes = sorted(set(edges) | {b for bs in edges.values() for b in bs})
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def circles(crate, tests):
    """(parent module, circle of its children, evidence per edge) for one crate."""
    mods, inline = module_files(crate / "src")
    known = set(mods) | inline
    # edges[parent][a][b] = "file:line: path", the first reference from child a to child b
    edges = defaultdict(lambda: defaultdict(dict))
    for module, (file, test) in mods.items():
        if test and not tests:
            continue
        raw = file.read_text()
        for here, segs, pos in references(module, strip(raw), tests):
            target = ()
            for k in range(1, len(segs) + 1):
                if tuple(segs[:k]) not in known:
                    break
                target = tuple(segs[:k])
            common = 0
            while common < min(len(here), len(target)) and here[common] == target[common]:
                common += 1
            if common in (len(here), len(target)):
                continue  # the module itself, an ancestor or a descendant
            line = raw.count("\n", 0, pos) + 1
            evidence = f"{file.relative_to(ROOT)}:{line}: {'::'.join(segs)}"
            edges[here[:common]][here[common]].setdefault(target[common], evidence)
    return [
        (parent, comp, level)
        for parent, level in sorted(edges.items())
        for comp in strongly_connected({a: set(bs) for a, bs in level.items()})
    ]


def main(args):
    tests = "--tests" in args
    dirs = [pathlib.Path(a).resolve() for a in args if a != "--tests"]
    crates = dirs or sorted(p for p in (ROOT / "crates").iterdir() if (p / "src").is_dir())
    found = 0
    for crate in crates:
        for parent, comp, level in circles(crate, tests):
            found += 1
            print(f"{crate.name}: circle under {'::'.join(('crate',) + parent)}: {', '.join(comp)}")
            for a in comp:
                for b in comp:
                    if b in level.get(a, {}):
                        print(f"  {a} -> {b}  ({level[a][b]})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
