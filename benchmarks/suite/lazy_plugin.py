"""``pytest -p benchmarks.suite.lazy_plugin``: the existing tests against the prototype.

Every ``EncryptedCharField`` and ``EncryptedTextField`` then decrypts on first attribute access
(``benchmarks/suite/lazy.py``). A probe, not part of the test run; see docs/benchmarks.md.
"""

from __future__ import annotations

from benchmarks.suite.lazy import install_on_package_fields

install_on_package_fields()
