"""Policy: rules and roles -> desired accounts and grants at a date (pure, no I/O).

``load_policy_file``/``parse_policy`` read and validate the YAML document, ``compile_policy``
turns it into closures, ``evaluate`` gives a ``DesiredState`` and ``explain`` answers why (and
why not) for one person.
"""

from pasa.policy.document import (
    EntitlementSpec,
    PolicyDocument,
    RoleSpec,
    RuleSpec,
    TargetSpec,
    load_policy_file,
    parse_policy,
)
from pasa.policy.evaluate import CompiledPolicy, CompiledRule, compile_policy, evaluate
from pasa.policy.explain import Explanation, explain

__all__ = [
    "CompiledPolicy",
    "CompiledRule",
    "EntitlementSpec",
    "Explanation",
    "PolicyDocument",
    "RoleSpec",
    "RuleSpec",
    "TargetSpec",
    "compile_policy",
    "evaluate",
    "explain",
    "load_policy_file",
    "parse_policy",
]
