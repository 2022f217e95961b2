"""Shim for tools that still want setup.py (Beam's --setup_file ships the package to workers with it).

All metadata lives in setup.cfg.
"""
import setuptools

setuptools.setup()
