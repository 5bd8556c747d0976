"""Planning: desired vs recorded state -> ordered, explained operations (pure, no I/O)."""

from pasa.planning.plan import Plan, apply_to_recorded, current_accounts, plan
from pasa.planning.usernames import UsernameAllocator, fold

__all__ = ["Plan", "UsernameAllocator", "apply_to_recorded", "current_accounts", "fold", "plan"]
