"""Operator tests.

A package, so pytest names modules tests.* rather than operator.tests.*, which would shadow
the standard library's operator module.
"""
