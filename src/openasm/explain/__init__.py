"""Explain one participant's result: the chain from measures to dollars with every rule's citation and evidence."""

from openasm.explain.chain import ExplainError, Explanation, ParameterUse, Step, explain_participant

__all__ = ["ExplainError", "Explanation", "ParameterUse", "Step", "explain_participant"]
