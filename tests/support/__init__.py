"""Test set-up shared across test folders: a served app, a small hub world, a signed-in client.

Imported as ``support.<module>``: ``tests/`` is on ``sys.path`` because pytest's default
``prepend`` import mode inserts the rootdir of ``tests/conftest.py`` (``tests/`` has no
``__init__.py``), the same way ``from api_world import ...`` finds ``tests/api/``.
"""
