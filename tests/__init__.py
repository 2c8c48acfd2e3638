"""Makes `tests` a package so that pytest puts the project root, not `tests/`, on sys.path.

With `tests/` itself on sys.path (what a top-level conftest.py in a plain directory causes),
`import mapping`, `import topics` and `import worker` would find the namespace directories
`tests/mapping`, `tests/topics`, `tests/worker` instead of the real packages.
"""
