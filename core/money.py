# placeholder replaced by the Money helper
from dataclasses import dataclass


@dataclass(frozen=True)
class Money:
    amount_minor: int
    currency: str
