"""Application services: orchestrate the pure core with the store, ledger and connectors.

The CLI and (later) the web API call these; they never build queries or connectors themselves.
"""
