"""Shared test code: drivers, Hypothesis strategies and settings. Test modules import
``support.<module>`` (``tests`` is on ``sys.path`` through pytest's ``pythonpath``); test
modules never import each other."""
