"""Bases that let IDEs and type checkers see the generated API methods.

Empty at run time: `with_operations` installs the methods on `Warehouse` and `AsyncWarehouse`. The
signatures are in `methods.pyi`, generated from OPERATIONS by `resources.warehouse.ops.stubs`.
"""


class WarehouseMethods:
    """The operations of `Warehouse`, as the stub declares them."""


class AsyncWarehouseMethods:
    """The operations of `AsyncWarehouse` (coroutines), as the stub declares them."""
