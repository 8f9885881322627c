"""``cdp``: the platform's command line for people and scripts, talking to the REST API from anywhere.

It needs only Python's standard library and a token (issued at ``/tokens/``),
given by ``--token``, ``CDP_TOKEN`` or the config file; the platform's address
by ``--url``, ``CDP_URL`` or the config file.
"""
