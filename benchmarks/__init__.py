"""The benchmark scripts, run as modules from the checkout: ``python -m benchmarks.overhead``.

Importing the package applies the memory layout a callgrind run asks for, before any
script imports Flask (see :func:`benchmarks.harness.shift_layout`).
"""

from benchmarks.harness import shift_layout

shift_layout()
