"""What the tests (and the benchmarks) share: the app factory (``apps``), the Sentry
receivers (``sentry``) and the apps the Sentry tests serve (``sentry_apps``), the statsd
receiver and metric-line readers (``metrics``), the middleware paths and ``Server-Timing``
reader (``timing``), the real services and gunicorn (``services``), the
Flask-DebugToolbar apps and page readers (``toolbar``), and the benchmark runners of the
smoke tests (``benchmarks``). Fixtures built on them live in ``tests/conftest.py``."""
