"""What the test lanes share, imported as ``support.<module>`` (pyproject.toml puts tests/ on pytest's
pythonpath). Modules that hold fixtures are loaded by the test modules that need them, with
``pytest_plugins``; ``playbooks`` (ansible-runner) only by the playbook and VM lanes.
"""
