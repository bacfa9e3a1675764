"""Drill runner: plant a fault on a disposable host, prove it broke, recover it, prove it recovered.

``python -m lifeline_drill`` runs a matrix of drills (faults x targets) with ansible-runner, one
run of playbooks/drill.yml per drill, and writes drills.json, junit.xml and summary.md.
"""
