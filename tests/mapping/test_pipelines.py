"""The Pipelines call types are named once: the `CallType` a sources-file filter may name is the set
of tags the output union decodes."""

from __future__ import annotations

from typing import get_args

from mapping import pipelines


def test_call_types_are_the_tags_of_the_output_union() -> None:
    tags = tuple(call.__struct_config__.tag for call in get_args(pipelines.AnyCall))
    assert tags == pipelines.CALL_TYPES
