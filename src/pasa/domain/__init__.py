"""Pure domain types: no I/O, no database, no framework imports."""
