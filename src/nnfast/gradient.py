"""Numerical differentiation (central differences), for gradient checks."""
from .reference.gradient import numerical_gradient

__all__ = ["numerical_gradient"]
