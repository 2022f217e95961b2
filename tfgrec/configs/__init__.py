"""Packaged run configs (YAML): ``default.yaml`` is the demo, over the defaults of
:mod:`tfgrec.config`'s dataclasses (it holds only what the demo sets differently).

A package only so that setuptools ships the YAML files as its data; read them by path
(``tfgrec.config.DEFAULT_CONFIG``).
"""
