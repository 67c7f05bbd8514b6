# SPDX-License-Identifier: Apache-2.0
"""The hand-written type stubs (zss/_zss.pyi, zss/toy.pyi) match the compiled module: every
public function with the same parameter names, order, keyword-only marker and defaults, every
class with the same public attributes and methods."""
import ast
import os

import pytest

import zss

HERE = os.path.dirname(os.path.abspath(zss.__file__))


def stub(name):
    with open(os.path.join(HERE, name)) as f:
        return ast.parse(f.read())


def split_params(text):
    """'a: int = 1, *, b: List[int] = [2, 4]' -> ['a: int = 1', '*', 'b: ...'] (depth-aware)."""
    parts, depth, cur, quote = [], 0, "", None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def runtime_params(fn):
    """[(name, keyword_only, default or NO)] from pybind11's docstring signature."""
    first = fn.__doc__.splitlines()[0]
    inner = first[first.index("(") + 1:first.rindex(") ->")]
    out, kw = [], False
    for p in split_params(inner):
        if p == "*":
            kw = True
            continue
        name = p.split(":")[0].strip()
        default = p.split(" = ", 1)[1] if " = " in p else NO
        out.append((name, kw, default))
    return [p for p in out if p[0] != "self"]


NO = object()


def literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return NO  # not a literal (e.g. dtype('float32')): not compared


def stub_params(fn):
    a = fn.args
    pos = a.posonlyargs + a.args
    defaults = [NO] * (len(pos) - len(a.defaults)) + list(a.defaults)
    out = [(p.arg, False, d) for p, d in zip(pos, defaults)]
    out += [(p.arg, True, d if d is not None else NO)
            for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    return [p for p in out if p[0] != "self"]


def compare(runtime_fn, stub_fn, where):
    rt, st = runtime_params(runtime_fn), stub_params(stub_fn)
    assert [(n, k) for n, k, _ in rt] == [(n, k) for n, k, _ in st], where
    for (name, _, rd), (_, _, sd) in zip(rt, st):
        assert (rd is NO) == (sd is NO), f"{where}: default of {name}"
        if rd is not NO:
            rv, sv = literal(rd), literal(ast.unparse(sd))
            if rv is not NO and sv is not NO:
                assert rv == sv, f"{where}: default of {name}: {rv!r} vs {sv!r}"


@pytest.mark.parametrize("module,stub_file", [(zss._zss, "_zss.pyi"), (zss.toy, "toy.pyi")])
def test_functions_match(module, stub_file):
    tree = stub(stub_file)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    runtime = {n for n in dir(module) if not n.startswith("_")
               and callable(getattr(module, n)) and not isinstance(getattr(module, n), type)}
    assert runtime == set(funcs), runtime ^ set(funcs)
    for name in runtime:
        compare(getattr(module, name), funcs[name], name)


def test_classes_match():
    tree = stub("_zss.pyi")
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    runtime = {n for n in dir(zss._zss) if isinstance(getattr(zss._zss, n), type)}
    assert runtime == set(classes), runtime ^ set(classes)
    for name in runtime:
        cls = getattr(zss._zss, name)
        members = {n for n in dir(cls) if not n.startswith("_")}
        declared = set()
        for node in classes[name].body:
            if isinstance(node, ast.AnnAssign):
                declared.add(node.target.id)
            elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                declared.add(node.name)
                if not any(isinstance(d, ast.Name) and d.id == "property"
                           for d in node.decorator_list):
                    compare(getattr(cls, node.name), node, f"{name}.{node.name}")
        assert members == declared, f"{name}: {members ^ declared}"


def test_every_function_has_a_docstring_with_shapes():
    for name in dir(zss._zss):
        obj = getattr(zss._zss, name)
        if callable(obj) and not name.startswith("_") and not isinstance(obj, type):
            body = "\n".join(obj.__doc__.splitlines()[1:])
            assert len(body.strip()) > 40, name
