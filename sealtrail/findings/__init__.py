"""Findings: rules (built-in and Sigma) over the case database, each finding tied to evidence.

Imports run cli -> findings -> analysis -> custody: analysis never imports findings.
"""
