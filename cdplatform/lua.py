"""Lua scripts run on Redis by their SHA1 (``EVALSHA``), alone or among a pipeline's commands.

``EVAL`` sends a script's whole text with every call, and Redis hashes it
each time to find the compiled script. ``EVALSHA`` sends 40 characters: the
text goes once per server, loaded when the server answers ``NOSCRIPT`` (it
restarted, or its scripts were flushed). redis-py's own ``register_script``
does the same alone, but on a pipeline it asks ``SCRIPT EXISTS`` before
every ``execute()``: a round trip more each time. :func:`execute` instead
sends the pipeline as it is and runs again, on its own, any script call the
server did not know. This module imports no app.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import redis
from redis.exceptions import NoScriptError, ResponseError

# Every script made in this process, by SHA1: what execute() loads when the server lacks one.
_SCRIPTS: dict[str, LuaScript] = {}


class LuaScript:
    """A Lua script called by its SHA1; its text is sent to a server only when the server lacks it."""

    __slots__ = ("text", "sha")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        _SCRIPTS[self.sha] = self

    def __call__(self, connection: redis.Redis, keys: Sequence, args: Sequence):
        """Run the script now: one round trip (two the first time a server sees it)."""
        try:
            return connection.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            connection.script_load(self.text)
            return connection.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe, keys: Sequence, args: Sequence) -> None:
        """Add a call of the script to a pipeline (sent by :func:`execute`)."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)


def execute(connection: redis.Redis, pipe) -> list:
    """Send a pipeline made on ``connection`` in one round trip; its replies, as ``pipe.execute()`` gives them.

    A script call the server did not know is run again on its own once the
    script is loaded, in the order of the pipeline (the other commands have
    run by then). Any other error is raised, as ``pipe.execute()`` does.
    """
    commands = [args for args, _ in pipe.command_stack]
    replies = pipe.execute(raise_on_error=False)
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError) and commands[index][1] in _SCRIPTS:
            script = _SCRIPTS[commands[index][1]]
            connection.script_load(script.text)
            replies[index] = connection.evalsha(*commands[index][1:])
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
