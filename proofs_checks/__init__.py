"""Verification of bilevel claims: the symbolic predictions of ``bilevel.analysis`` measured
against the torch solvers of ``bilevel.solvers``, with stated statistical procedures."""
