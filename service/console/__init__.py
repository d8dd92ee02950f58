"""The operator console: server-rendered French pages under ``/console``.

It reads what the operator answers already read (``service.http.operator.window_facts``,
:mod:`service.stats`, ``Store.timeline`` and ``Store.events_since``) and renders it for a
person: no build step, no extra server, no script needed to read a page. Only operators get
in (a login form with ``RDV_OPERATOR_TOKEN`` sets a signed cookie), and nothing here runs on
the turn path (an import-linter contract says so).
"""
