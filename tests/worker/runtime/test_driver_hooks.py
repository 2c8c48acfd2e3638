"""The private Faust, mode and aiokafka hooks that worker/runtime/driver.py relies on still exist.

The driver subclasses Faust's aiokafka driver and overrides, calls or writes names that neither
library promises to keep. A release that renames one would not break the import: the override
would simply never be called again (offsets committed before their outputs are acknowledged, or a
whole fetch delivered record by record), or the write would go to an attribute nobody reads. So
each hook is named in `HOOKS`, with its library class and why the driver needs it, and checked on
the installed versions: it exists there, with the parameters the driver's override or call uses,
and the library code that is meant to call or read it still does. A second test keeps the table
complete: every private name in driver.py is either in it or the driver's own, and none of the
driver's own private names has come to shadow a library attribute.

pyproject.toml bounds faust-streaming and aiokafka to the lines this passes on; when one of these
tests fails after `make lock UPGRADE=1`, update the driver (and this table) before the bound.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service
from mode.services import ServiceTask

from worker.runtime import driver

DRIVER_SOURCE = Path(driver.__file__).read_text()


class Use(Enum):
    OVERRIDE = "override"  # the driver's subclass defines it; the library calls it
    CALL = "call"  # the driver calls it
    ATTRIBUTE = "attribute"  # an instance attribute the driver reads or writes


@dataclass(frozen=True)
class Hook:
    owner: type  # the library class the driver derives from, or whose instance it writes to
    name: str
    use: Use
    # The library method that must still call or read the hook, for the driver's override or
    # write to have an effect; None for a hook the driver only calls.
    used_by: tuple[type, str] | None
    why: str
    # For a CALL: the parameters the driver's call passes (an OVERRIDE's are the driver's own).
    params: tuple[str, ...] = ()


AIOKafkaConsumerThread = faust_aiokafka.AIOKafkaConsumerThread
FaustConsumer = faust_aiokafka.Consumer
FaustProducer = faust_aiokafka.Producer

HOOKS = (
    Hook(
        AIOKafkaConsumerThread,
        "_create_worker_consumer",
        Use.OVERRIDE,
        (AIOKafkaConsumerThread, "_create_consumer"),
        "builds the worker's AIOKafkaConsumer; ConsumerThread sets the fetch wait on the result",
    ),
    Hook(
        AIOKafkaConsumer,
        "_fetch_max_wait_ms",
        Use.ATTRIBUTE,
        (AIOKafkaConsumer, "start"),
        "written on the fresh consumer (Faust hard-codes 1500 ms); start() reads it into the Fetcher",
    ),
    Hook(
        FaustConsumer,
        "__post_init__",
        Use.OVERRIDE,
        (Service, "__init__"),
        "mode's post-construction hook: creates the consumer's events, fetch lock and acked offsets",
    ),
    Hook(
        FaustConsumer,
        "_new_consumer_thread",
        Use.OVERRIDE,
        (faust_consumer.ThreadDelegateConsumer, "__init__"),
        "makes Faust run the driver's ConsumerThread (and so its _create_worker_consumer)",
    ),
    Hook(
        FaustConsumer,
        "_drain_messages",
        Use.OVERRIDE,
        (faust_consumer.Fetcher, "_fetcher"),
        "Faust's fetch loop, replaced to deliver one FetchedBatch per fetch to the agent's inbox",
    ),
    Hook(
        FaustConsumer,
        "_wait_next_records",
        Use.CALL,
        None,
        "the driver's fetch loop takes each fetch's records and active partitions from it",
        params=("self", "timeout"),
    ),
    Hook(
        FaustConsumer,
        "_committed_offset",
        Use.ATTRIBUTE,
        (faust_consumer.Consumer, "_should_commit"),
        "rewind() records the offsets it seeks to; lags() falls back to it before any acknowledgement",
    ),
    Hook(
        FaustConsumer,
        "_filter_tps_with_pending_acks",
        Use.OVERRIDE,
        (faust_consumer.Consumer, "force_commit"),
        "the partitions a commit covers: those with an acknowledged batch, not Faust's per-message acks",
    ),
    Hook(
        FaustConsumer,
        "_new_offset",
        Use.OVERRIDE,
        (faust_consumer.Consumer, "_filter_committable_offsets"),
        "the offset committed per partition: the one after the last acknowledged batch",
    ),
    Hook(
        FaustConsumer,
        "_commit",
        Use.OVERRIDE,
        (faust_consumer.Consumer, "_commit_offsets"),
        "wrapped (super() does the commit) to record when the last commit succeeded",
    ),
    Hook(
        FaustProducer,
        "_ensure_producer",
        Use.CALL,
        None,
        "hands the started AIOKafkaProducer to the batch sender (create_batch/send_batch, whole batches)",
        params=("self",),
    ),
    Hook(
        FaustProducer,
        "_settings_extra",
        Use.OVERRIDE,
        (FaustProducer, "_new_producer"),
        "wrapped to add enable_idempotence and acks=all when the idempotence setting is on",
    ),
)

# The driver's subclasses of Faust's aiokafka driver classes.
DRIVER_CLASSES = (driver.ConsumerThread, driver.Consumer, driver.Producer, driver.Transport)


def _hook_id(hook: Hook) -> str:
    return f"{hook.owner.__name__}.{hook.name}"


def _function_tree(function: object) -> ast.AST:
    if isinstance(function, ServiceTask):  # a mode `@Service.task`
        function = function.fun
    return ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]


def _attributes_named(tree: ast.AST, name: str) -> list[ast.Attribute]:
    """The `x.NAME` expressions of `tree` that read (or call) NAME."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.ctx, ast.Load)
    ]


def _self_assignments(tree: ast.AST) -> frozenset[str]:
    """The NAMEs of the `self.NAME = ...` assignments in `tree`."""
    return frozenset(
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


@functools.cache
def _assigned_in_init(cls: type) -> frozenset[str]:
    """The attributes that `cls.__init__` (its own, not a base's) assigns on self."""
    init = cls.__dict__.get("__init__")
    return _self_assignments(_function_tree(init)) if init is not None else frozenset()


@functools.cache
def _assigned_anywhere(cls: type) -> frozenset[str]:
    """The attributes that any method of `cls` (its own, not a base's) assigns on self."""
    try:
        return _self_assignments(ast.parse(textwrap.dedent(inspect.getsource(cls))))
    except (OSError, TypeError):  # built-in or generated: nothing assigned in Python source
        return frozenset()


def _library_mro(cls: type) -> list[type]:
    return [klass for klass in cls.__mro__ if klass is not object and klass not in DRIVER_CLASSES]


def _library_has(cls: type, name: str) -> bool:
    """Whether `cls` (a library class) has `name`: as a class attribute, an annotated attribute,
    or an attribute some method of a class in its MRO assigns on self."""
    return hasattr(cls, name) or any(
        name in inspect.get_annotations(klass) or name in _assigned_anywhere(klass)
        for klass in _library_mro(cls)
    )


def _driver_class_overriding(hook: Hook) -> type:
    classes = [cls for cls in DRIVER_CLASSES if issubclass(cls, hook.owner) and hook.name in vars(cls)]
    assert classes, f"driver.py no longer overrides {_hook_id(hook)}: update HOOKS"
    return classes[0]


@pytest.mark.parametrize("hook", HOOKS, ids=_hook_id)
def test_the_hook_still_exists_on_the_installed_version(hook: Hook) -> None:
    if hook.use is Use.ATTRIBUTE:
        # An instance attribute: set when the object is made, so always there for the driver.
        assert any(hook.name in _assigned_in_init(klass) for klass in _library_mro(hook.owner)), (
            f"{_hook_id(hook)} is no longer set in __init__ ({hook.why})"
        )
    else:
        library = getattr(hook.owner, hook.name, None)
        assert callable(library), f"{_hook_id(hook)} is gone ({hook.why})"
        if hook.use is Use.OVERRIDE:
            ours = getattr(_driver_class_overriding(hook), hook.name)
            expected = tuple(inspect.signature(ours).parameters)
            assert inspect.iscoroutinefunction(library) == inspect.iscoroutinefunction(ours), (
                f"{_hook_id(hook)} changed between a coroutine and a plain function"
            )
        else:
            expected = hook.params
        assert tuple(inspect.signature(library).parameters) == expected, (
            f"{_hook_id(hook)}'s parameters changed ({hook.why})"
        )
    if hook.used_by is not None:
        cls, method = hook.used_by
        caller = getattr(cls, method, None)
        assert caller is not None, f"{cls.__name__}.{method}, which uses {hook.name}, is gone"
        assert _attributes_named(_function_tree(caller), hook.name), (
            f"{cls.__name__}.{method} no longer uses {hook.name}: the driver's {hook.use.value} has no effect"
        )


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_by_driver() -> dict[str, type]:
    """{name: the driver class} of the private names driver.py's classes define: their methods,
    class attributes and annotated attributes (dunders are Python's own, except the mode hook)."""
    defined: dict[str, type] = {}
    for node in ast.parse(DRIVER_SOURCE).body:
        if not isinstance(node, ast.ClassDef) or getattr(driver, node.name) not in DRIVER_CLASSES:
            continue
        cls = getattr(driver, node.name)
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [statement.name]
            elif isinstance(statement, ast.AnnAssign | ast.Assign):
                targets = [statement.target] if isinstance(statement, ast.AnnAssign) else statement.targets
                names = [target.id for target in targets if isinstance(target, ast.Name)]
            else:
                continue
            defined |= {name: cls for name in names if _private(name) or name == "__post_init__"}
    return defined


def test_the_table_names_every_library_hook_the_driver_uses() -> None:
    """Every private name driver.py touches is in HOOKS, unless it is the driver's own.

    A name that a driver class defines and its library base has too is an override, so it belongs
    in HOOKS: this fails as well when a library release adds a name the driver already uses for
    something of its own (say Faust's Consumer gains a `_seek_back`).
    """
    defined = _defined_by_driver()
    # What the driver reads, writes or calls, and what it defines (an override is only a definition).
    used = {
        node.attr
        for node in ast.walk(ast.parse(DRIVER_SOURCE))
        if isinstance(node, ast.Attribute) and _private(node.attr)
    } | set(defined)
    # The driver's own: defined by one of its classes, unknown to that class's library base.
    own = {name for name, cls in defined.items() if not _library_has(cls.__mro__[1], name)}
    missing = sorted(used - own - {hook.name for hook in HOOKS})
    assert not missing, f"library names driver.py uses that HOOKS does not list: {missing}"
    stale = sorted({hook.name for hook in HOOKS} - (used - own))
    assert not stale, f"HOOKS lists names driver.py no longer uses: {stale}"
