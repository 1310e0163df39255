"""What alerts say about an error class: what it means, what the pipeline does, what the operator
should do, read from the policy table in `pipeline.policy`.
"""

from __future__ import annotations

from pipeline.errors import ErrorClass
from pipeline.policy import POLICY, ClassPolicy


def _policy_row(error_class: str) -> ClassPolicy | None:
    try:
        return POLICY[ErrorClass(error_class)]
    except ValueError:
        return None


def class_meaning(error_class: str) -> str:
    """What an error class means, from the policy table."""
    row = _policy_row(error_class)
    return row.meaning if row else "an error the pipeline could not handle by itself"


def class_handling(error_class: str) -> str:
    """What the pipeline does about an error class, from the policy table."""
    row = _policy_row(error_class)
    return row.handling if row else "records it"


def class_action(error_class: str) -> str:
    """What an operator should do about an error class, from the policy table."""
    row = _policy_row(error_class)
    return row.action if row else "Look at `cin7xero dlq list` and the worker logs."
