"""The ``flask observe`` commands: list the metric names and check the statsd target.

::

    $ flask --app myapp observe metrics
    $ flask --app myapp observe check

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import fnmatch
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from .metrics_state import MetricsState
from .naming import UNMATCHED
from .paths import ExcludedPaths
from .state import get_state
from .statsd_client import describe_target
from .statsd_client import open_socket

if t.TYPE_CHECKING:
    from .naming import Dialect

observe_cli = AppGroup("observe", help="Flask-Observe: metrics names and statsd check.")


def _metrics_state() -> MetricsState:
    metrics = get_state().part(MetricsState)
    if metrics is None:  # pragma: no cover - set by init_app
        raise click.ClickException("Flask-Observe metrics are not set up on this app.")
    return metrics


@observe_cli.command("metrics")
@click.option(
    "--endpoint",
    "-e",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help="Only endpoints matching this glob, e.g. 'api.*' (repeatable; '_unmatched' "
    "names the requests no route matched).",
)
@click.option(
    "--all",
    "-a",
    "--verbose",
    "-v",
    "full",
    is_flag=True,
    help="One block per route and method, HEAD and OPTIONS included.",
)
def list_metrics(patterns: tuple[str, ...], full: bool) -> None:
    """List the metric names each route emits, in the configured dialect.

    One line per route with its methods, then its timer and counters with the method
    as ``<METHOD>``; ``--all`` gives one block per method.
    """
    metrics = _metrics_state()
    dialect = metrics.dialect
    excluded = ExcludedPaths(get_state().config.exclude_paths)
    rules = [
        rule
        for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: (str(r), r.endpoint))
        if _wanted(rule.endpoint, patterns)
    ]
    unmatched = _wanted(UNMATCHED, patterns)
    if not rules and not unmatched:
        raise click.ClickException(f"No endpoint matches {' or '.join(patterns)}.")
    static: list[str] = []
    for rule in rules:
        path, endpoint = str(rule), rule.endpoint
        methods = _methods(rule.methods or ())
        if endpoint == "static" or endpoint.endswith(".static"):
            static.append(_static_prefix(path))
        if excluded.covers_rule(path):
            for method in methods if full else [",".join(methods)]:
                click.echo(
                    f"{method} {path}  ->  {endpoint}  (not emitting: OBSERVE_EXCLUDE_PATHS)"
                )
            continue
        if not full:
            names = metrics.route(endpoint, methods[0] if methods else "GET")
            click.echo(f"{','.join(methods)} {path}  ->  {endpoint}")
            _echo_names(dialect, names.endpoint, ["<METHOD>"])
            continue
        for method in methods:
            names = metrics.route(endpoint, method)
            click.echo(f"{method} {path}  ->  {endpoint}")
            _echo_names(dialect, names.endpoint, [names.method])
    if unmatched:
        click.echo(f"* (no route matched)  ->  {UNMATCHED}")
        _echo_names(dialect, metrics.route(None, "GET").endpoint, ["<METHOD>"])
    if static:
        prefixes = ", ".join(repr(prefix) for prefix in static)
        click.echo("Note: static files emit metrics too; to stop them, set")
        click.echo(f"  OBSERVE_EXCLUDE_PATHS = [{prefixes}]")
    if metrics.client is None:
        where = "recorded per request only" if metrics.record else "not sent"
        click.echo(f"OBSERVE_STATSD_HOST is not set: metrics are {where}.")


#: Methods Flask and Werkzeug add to a route themselves, listed after the view's own.
AUTOMATIC_METHODS = ("HEAD", "OPTIONS")


def _methods(methods: t.Iterable[str]) -> list[str]:
    """*methods* in reading order: the view's own sorted, then ``HEAD`` and ``OPTIONS``."""
    own = sorted(method for method in methods if method not in AUTOMATIC_METHODS)
    return own + [method for method in AUTOMATIC_METHODS if method in methods]


def _wanted(endpoint: str, patterns: tuple[str, ...]) -> bool:
    """Whether *endpoint* matches one of the ``--endpoint`` globs (all without any)."""
    return not patterns or any(fnmatch.fnmatchcase(endpoint, pattern) for pattern in patterns)


def _echo_names(dialect: Dialect, endpoint: str, methods: list[str]) -> None:
    """The timer and counters of *endpoint*, per method, then its exception counter."""
    for method in methods:
        tags = [("endpoint", endpoint), ("method", method)]
        click.echo(f"  timer    {dialect.describe('request', tags)}")
        click.echo("  counter  " + dialect.describe("response", [*tags, ("status", "<status>")]))
    exc_tags = [("endpoint", endpoint), ("exception", "<ExceptionClass>")]
    click.echo(f"  counter  {dialect.describe('exception', exc_tags)}")


def _static_prefix(rule: str) -> str:
    return rule.partition("<")[0] + "*"


@observe_cli.command("check")
def check() -> None:
    """Send a test counter to the configured statsd and report the outcome."""
    metrics = _metrics_state()
    config = get_state().config
    if config.statsd_host is None:
        raise click.ClickException("OBSERVE_STATSD_HOST is not set: metrics are not sent.")
    line = metrics.dialect.line("flask_observe.check", "1", "c")
    protocol = config.statsd_protocol
    host, port = config.statsd_host, config.statsd_port
    target = describe_target(protocol, host, port)
    try:
        message = _send_check(protocol, host, port, line.encode("ascii"))
    except OSError as exc:
        raise click.ClickException(f"statsd at {target} failed: {exc}") from None
    click.echo(f"{target}: {message} ({line})")


def _send_check(protocol: str, host: str, port: int, data: bytes) -> str:
    """Send *data* once and describe what is known about its delivery."""
    sock, address = open_socket(protocol, host, port, 2.0)
    with sock:
        if protocol == "unix":
            sock.sendto(data, address)
            return "sent to the statsd socket"
        if protocol == "tcp":
            sock.sendall(data + b"\n")
            return "statsd answered: TCP connection accepted and the metric sent"
        sock.connect(address)
        sock.send(data)
        # A connected UDP socket learns of an ICMP "port unreachable" on its next call.
        sock.settimeout(0.3)
        try:
            sock.recv(1)
        except TimeoutError:
            return "sent over UDP (no error reported; UDP delivery is not confirmed)"
        return "sent over UDP"
