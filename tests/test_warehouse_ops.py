"""The storage operations are declared once (`resources.warehouse.ops.OPERATIONS`) and both APIs follow it.

The parity of `Warehouse` and `AsyncWarehouse` is checked in `test_warehouse_async.py`; here: nothing in
the domain modules is left out of the list, both classes carry exactly the list, and the generator refuses
what would make the two drift (a kind of operation without a wrapper, a hand-written method shadowing a
declared one).
"""

from __future__ import annotations

import ast
import inspect
import os

import pytest

from market_warehouse.resources.warehouse.api import Warehouse
from market_warehouse.resources.warehouse.async_api import AsyncWarehouse
from market_warehouse.resources.warehouse.ops import (
    OPERATIONS,
    analytics,
    instruments,
    market,
    operations,
    stubs,
    trading,
    with_operations,
)
from market_warehouse.resources.warehouse.ops.methods import AsyncWarehouseMethods, WarehouseMethods

DOMAINS = (market, instruments, analytics, trading, operations)
# Functions of a connection or engine that are not API methods by design.
NOT_METHODS = {"health_details"}  # `health` wraps it differently in each class (it never raises)


def _domain_operations() -> set[str]:
    """Public functions of the domain modules whose first argument is where they run."""
    found = set()
    for module in DOMAINS:
        for name, fn in vars(module).items():
            if not inspect.isfunction(fn) or fn.__module__ != module.__name__ or name.startswith("_"):
                continue
            first = next(iter(inspect.signature(fn).parameters), None)
            if first in ("conn", "engine"):
                found.add(name)
    return found - NOT_METHODS


def test_every_operation_of_the_domain_modules_is_declared_once():
    declared = [op.name for op in OPERATIONS]
    assert len(declared) == len(set(declared))
    assert set(declared) == _domain_operations()


@pytest.mark.parametrize("cls", [Warehouse, AsyncWarehouse])
def test_each_class_has_a_method_per_declared_operation_with_its_signature(cls):
    for op in OPERATIONS:
        method = getattr(cls, op.name)
        params = list(inspect.signature(op.fn).parameters.values())[1:]
        assert list(inspect.signature(method).parameters.values())[1:] == params, op.name
        assert method.__doc__ == op.fn.__doc__ and method.__doc__, op.name
        assert inspect.iscoroutinefunction(method) == (cls is AsyncWarehouse), op.name


def test_the_generator_refuses_a_missing_wrapper_and_a_shadowing_method():
    def identity(fn):
        return fn

    with pytest.raises(TypeError, match="engine"):
        with_operations(transaction=identity, reader=identity)

    class Shadowing:
        def get_ohlcv(self):
            return []

    with pytest.raises(TypeError, match="get_ohlcv"):
        with_operations(transaction=identity, reader=identity, engine=identity)(Shadowing)


def test_the_type_stub_of_the_generated_methods_is_in_sync_with_operations():
    """IDEs and type checkers read the methods from `ops/methods.pyi`; it must say what OPERATIONS says.
    Regenerate with `python -m market_warehouse.resources.warehouse.ops.stubs` (or MW_UPDATE_SNAPSHOTS=1 here)."""
    text = stubs.render()
    if os.environ.get("MW_UPDATE_SNAPSHOTS"):
        stubs.STUB.write_text(text)
    assert stubs.STUB.read_text() == text, (
        "methods.pyi is stale: run python -m market_warehouse.resources.warehouse.ops.stubs"
    )
    assert issubclass(Warehouse, WarehouseMethods) and issubclass(AsyncWarehouse, AsyncWarehouseMethods)


@pytest.mark.parametrize(
    ("stub_class", "cls"), [("WarehouseMethods", Warehouse), ("AsyncWarehouseMethods", AsyncWarehouse)]
)
def test_the_stub_declares_each_method_as_the_class_has_it(stub_class, cls):
    """Every operation, with the method's parameters in order and its kind (coroutine or not); and the
    stub runs as Python, so every name its annotations use is imported."""
    tree = ast.parse(stubs.STUB.read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == stub_class]
    methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert list(methods) == [op.name for op in OPERATIONS]
    for name, method in methods.items():
        args = method.args
        stub_params = [a.arg for a in [*args.args, *args.kwonlyargs]]
        stub_params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
        real = [p for p in inspect.signature(getattr(cls, name)).parameters.values()]
        ordered = [p.name for p in real if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        ordered += [p.name for p in real if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        assert stub_params == ordered, name
        assert isinstance(method, ast.AsyncFunctionDef) == inspect.iscoroutinefunction(getattr(cls, name)), (
            name
        )
    namespace: dict = {}
    exec(compile(tree, str(stubs.STUB), "exec"), namespace)  # annotations evaluated: each name must exist
    assert set(vars(namespace[stub_class])) >= set(methods)
