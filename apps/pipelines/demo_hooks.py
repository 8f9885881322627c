"""What other apps add to the demo pipeline that ``seed_demo`` saves.

A hook is given the demo document and returns it (changed or not) with one
line for the person starting the platform: the deployments app turns the
demo's deploy waits into a real bake and red/black deploy when a Docker
engine is reachable, and says why not otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

DemoHook = Callable[[dict], tuple[dict, str]]

_hooks: list[DemoHook] = []


def register_demo_hook(hook: DemoHook) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


def apply_demo_hooks(document: dict) -> tuple[dict, list[str]]:
    """The demo document after every registered hook, and what each hook said."""
    lines = []
    for hook in _hooks:
        document, line = hook(document)
        if line:
            lines.append(line)
    return document, lines
