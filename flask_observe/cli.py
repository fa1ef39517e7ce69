"""The ``flask observe`` commands: list the metric names and check the statsd target.

::

    $ flask --app myapp observe metrics
    $ flask --app myapp observe check

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from .metrics_state import MetricsState
from .naming import UNMATCHED
from .paths import ExcludedPaths
from .state import get_state
from .statsd_client import describe_target
from .statsd_client import open_socket

observe_cli = AppGroup("observe", help="Flask-Observe: metrics names and statsd check.")


def _metrics_state() -> MetricsState:
    metrics = get_state().part(MetricsState)
    if metrics is None:  # pragma: no cover - set by init_app
        raise click.ClickException("Flask-Observe metrics are not set up on this app.")
    return metrics


@observe_cli.command("metrics")
def list_metrics() -> None:
    """List the metric names each route emits, in the configured dialect."""
    metrics = _metrics_state()
    dialect = metrics.dialect
    rows: list[tuple[str, str, str | None]] = [
        (str(rule), rule.endpoint, method)
        for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: (str(r), r.endpoint))
        for method in sorted(rule.methods or ())
    ]
    rows.append(("(no route matched)", UNMATCHED, None))
    excluded = ExcludedPaths(get_state().config.exclude_paths)
    for rule, endpoint, method in rows:
        names = metrics.route(endpoint if method is not None else None, method or "GET")
        methods = [names.method] if method is not None else ["<METHOD>"]
        if method is not None and excluded.covers_rule(rule):
            click.echo(f"{method} {rule}  ->  {endpoint}  (not emitting: OBSERVE_EXCLUDE_PATHS)")
            continue
        click.echo(f"{method or '*'} {rule}  ->  {endpoint}")
        if endpoint == "static" or endpoint.endswith(".static"):
            click.echo(
                "  note     static files emit metrics too; OBSERVE_EXCLUDE_PATHS = "
                f"[{_static_prefix(rule)!r}] stops them"
            )
        for meth in methods:
            tags = [("endpoint", names.endpoint), ("method", meth)]
            click.echo(f"  timer    {dialect.describe('request', tags)}")
            click.echo(
                "  counter  " + dialect.describe("response", [*tags, ("status", "<status>")])
            )
        exc_tags = [("endpoint", names.endpoint), ("exception", "<ExceptionClass>")]
        click.echo(f"  counter  {dialect.describe('exception', exc_tags)}")
    if metrics.client is None:
        where = "recorded per request only" if metrics.record else "not sent"
        click.echo(f"OBSERVE_STATSD_HOST is not set: metrics are {where}.")


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
