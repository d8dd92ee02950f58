"""Operator tools of the ``rdv`` command: ``diagnose``, ``simulate`` and ``probe``.

Each tool module exposes ``register(subparsers)``; ``service.cli`` finds and registers them.
They talk to a running service only through its public HTTP interfaces (the Vapi custom-LLM
endpoint, the text API, the operator answers), or read a store or log file directly.
"""
