"""Collecting rankings from human annotators: a web app over a SQL store, agreement, export.

Modules, one job each: `models` (schema) and `db` (engine, SQLite settings, migrations), `store`
(every read and write) and `records` (the values it hands out), `auth` (passwords, signed
sessions), `app` (the web pages), `imports` and `export` (JSONL in and out), `aggregate`
(majority and Borda), `agreement` (pairwise agreement, Krippendorff's alpha, outliers), `cli`
(`rewardlab annotate ...`). Heavy imports stay inside the modules that need them, so importing
this package is cheap. docs/annotate.md is the user guide.
"""
