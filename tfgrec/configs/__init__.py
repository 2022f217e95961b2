"""Packaged run configs (YAML): ``default.yaml`` is the demo and the defaults of every command.

A package only so that setuptools ships the YAML files as its data; read them by path
(``tfgrec.config.DEFAULT_CONFIG``).
"""
