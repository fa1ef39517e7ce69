"""What the tests (and the benchmarks) share: the app factory (``apps``), the Sentry
receivers (``sentry``), the statsd receiver and metric-line readers (``metrics``), the real
services (``services``) and the Flask-DebugToolbar apps (``toolbar``). Fixtures built on
them live in ``tests/conftest.py``."""
