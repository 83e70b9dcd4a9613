"""Helpers for testing RTL units on their own in the pure-Python PyMTL3 simulator."""
from __future__ import annotations

from pymtl3 import DefaultPassGroup


def simulate(component):
    """Elaborate the component, make it simulatable and reset it; returns it."""
    component.elaborate()
    component.apply(DefaultPassGroup(linetrace=False))
    component.sim_reset()
    return component
