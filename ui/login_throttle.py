"""Failed logins slow down, per address and per user name.

After `free` failures in a row, each further attempt from that address (or for that
user) is refused without being checked for a while: 1 s after the first failure over,
doubling with each one, at most 5 min. A right login clears its address and user. The
user's allowance is larger than an address's, so a stranger guessing at a user's
password slows themselves down long before the user is kept out. Kept in the UI
process (each UI process counts its own), at most `MAX_KEYS` addresses and users.
"""
from __future__ import annotations

import time

MAX_KEYS = 100_000
LONGEST = 300.0


class LoginThrottle:
    def __init__(self, free_per_address: int = 5, free_per_user: int = 20):
        self.free = {"ip": free_per_address, "user": free_per_user}
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failures in a row, when the last was)

    def _keys(self, address: str, user: str | None) -> list[str]:
        return [f"ip:{address}"] + ([f"user:{user}"] if user else [])

    def retry_after(self, address: str, user: str | None = None) -> float:
        """Seconds until `address` (and `user`) may try again; 0 when it may now."""
        now, wait = time.monotonic(), 0.0
        for key in self._keys(address, user):
            count, last = self._failures.get(key, (0, 0.0))
            over = count - self.free[key.partition(":")[0]]
            if over >= 0:
                wait = max(wait, last + min(2.0 ** over, LONGEST) - now)
        return max(wait, 0.0)

    def failed(self, address: str, user: str | None = None) -> None:
        now = time.monotonic()
        for key in self._keys(address, user):
            count, _ = self._failures.pop(key, (0, 0.0))
            self._failures[key] = (count + 1, now)  # re-inserted: the dict stays oldest first
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str, user: str | None = None) -> None:
        for key in self._keys(address, user):
            self._failures.pop(key, None)
