"""The run's pool as a second worker finds it: defined by the first, and not yet started."""

from archmatrix.guest import volumes


class PoolBeingStarted:
    """A pool another worker defined: it starts after a few looks, as libvirt's does once that worker's create() ran."""

    def __init__(self, looks_until_active: int):
        self.looks = looks_until_active
        self.created = False

    def isActive(self) -> bool:  # noqa: N802 (libvirt's name)
        self.looks -= 1
        return self.looks < 0 or self.created

    def create(self, _flags: int) -> None:
        self.created = True


def test_a_pool_found_defined_is_used_only_once_started(monkeypatch):
    monkeypatch.setattr(volumes.time, "sleep", lambda _s: None)
    pool = PoolBeingStarted(looks_until_active=5)
    assert volumes._active(pool) is pool and pool.looks < 0 and not pool.created


def test_a_pool_whose_creator_went_away_is_started_by_the_next_worker(monkeypatch):
    monkeypatch.setattr(volumes, "POOL_START_S", 0.0)
    pool = PoolBeingStarted(looks_until_active=10**6)
    assert volumes._active(pool) is pool and pool.created
