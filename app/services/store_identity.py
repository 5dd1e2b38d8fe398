"""Which models store is this database's: every process that uses the database must use it.

The database holds one id (`installation.store_id`) and the store's root holds the same id in
the marker file MARKER. A process given another folder (a typo, a volume not mounted, a host
whose store is not shared) would train runs whose checkpoints no API can read, and its start-up
sweep would delete the files of runs its database does not know. So the API claims the store
when it migrates (`claim_store`) and a Celery worker checks it before it starts its pool
(`check_store`); both refuse to start otherwise, saying what to fix. The embedded runner's
workers are not checked: the server spawns them with its own settings, after its own claim.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from app.ml.checkpoints import write_checkpoint_bytes
from app.models import Checkpoint, Installation
from app.services.storage import RUN_FOLDER

# In the store's root; git ignores it with the rest of models_store/.
MARKER = ".pc-store-id"

# The ways out of a refusal, for a store that was deleted or emptied on purpose.
DELETED = (
    "If that folder was deleted on purpose, restore it, or start afresh with a new database "
    "(for SQLite, delete the file PC_DATABASE_URL names)"
)
EMPTIED = "If that folder was emptied on purpose, start the API once: it marks an empty store again"


class StoreUnusable(RuntimeError):
    """PC_MODELS_STORE names a folder that is not this database's models store, or one that
    cannot be read or written at start-up."""


def read_marker(store: Path) -> str | None:
    """The id in the store's marker, or None where there is none (a new or emptied folder)."""
    try:
        return (store / MARKER).read_text().strip()
    except FileNotFoundError:
        return None


def claim_store(session: Session, store: Path) -> None:
    """Make `store` this database's models store, or refuse (StoreUnusable). Called while
    migrating, one process at a time; flushes, and writes the marker before the caller commits,
    so a store that cannot be written leaves the database as it was.

    A store is claimed (under a new id) where its marker and the database both have none: a
    fresh installation, or one from before stores were marked. It is claimed again where it has
    no marker and nothing could be lost or served wrong: the database records no checkpoint
    and the folder holds no run's files (a new or emptied store). A new id each time: a folder
    that still holds the old one (another host's store, not shared) is then refused, never
    taken for this one."""
    installation = session.get(Installation, 1)
    recorded = installation.store_id if installation is not None else None
    try:
        found = read_marker(store)
        if found is not None and found == recorded:
            return
        if found is not None or (recorded is not None and _what_is_at_stake(session, store)):
            raise _not_this_databases(session, store, recorded, found)
        store_id = secrets.token_hex(16)
        if installation is None:
            session.add(Installation(id=1, store_id=store_id))
        else:
            installation.store_id = store_id
        session.flush()
        write_checkpoint_bytes(store, MARKER, f"{store_id}\n".encode())  # atomic, fsynced
    except OSError as exc:
        raise _unreadable(store, exc) from None


def check_store(session: Session, store: Path) -> None:
    """Refuse (StoreUnusable) unless `store` is the one this database's API claimed. For
    workers: it never writes."""
    database = _database(session)
    if not inspect(session.connection()).has_table(Installation.__tablename__):
        raise StoreUnusable(
            f"the database at PC_DATABASE_URL={database} has not been migrated to this version "
            "(it records no models store): run `python -m app migrate`, or start the API, with "
            "the PC_MODELS_STORE every process shares, then start the workers"
        )
    installation = session.get(Installation, 1)
    if installation is None:
        raise StoreUnusable(
            f"the database at PC_DATABASE_URL={database} has not claimed a models store yet: "
            "run `python -m app migrate`, or start the API, with the PC_MODELS_STORE every "
            "process shares, then start the workers"
        )
    try:
        found = read_marker(store)
    except OSError as exc:
        raise _unreadable(store, exc) from None
    if found != installation.store_id:
        raise _not_this_databases(session, store, installation.store_id, found)


def _database(session: Session) -> str:
    return repr(session.get_bind().engine.url)  # the password hidden


def _what_is_at_stake(session: Session, store: Path) -> str:
    """What claiming `store` in place of the database's own would lose or serve wrong, or ""
    for nothing: the checkpoints the database records, and the run folders the store holds."""
    checkpoints = session.scalar(select(func.count()).select_from(Checkpoint)) or 0
    folders = sorted(
        path.name + "/"
        for path in (store.iterdir() if store.is_dir() else ())
        if RUN_FOLDER.match(path.name) and path.is_dir()
    )
    stakes = []
    if checkpoints:
        stakes.append(f"the database records {checkpoints} checkpoint(s) that belong in it")
    if folders:
        shown = ", ".join(folders[:3]) + (", ..." if len(folders) > 3 else "")
        stakes.append(f"it holds files of {len(folders)} run(s) ({shown})")
    return " and ".join(stakes)


def _not_this_databases(
    session: Session, store: Path, recorded: str | None, found: str | None
) -> StoreUnusable:
    database = _database(session)
    where = f"the models store at PC_MODELS_STORE={store}"
    if recorded is None:
        return StoreUnusable(
            f"{where} is another database's: its marker {MARKER} says {found}, and this "
            f"database (PC_DATABASE_URL={database}) has claimed none yet. Point PC_MODELS_STORE "
            "at a folder of this database's own (a new, empty one will do). If you replaced the "
            "database on purpose, empty that folder first: its files are the old database's runs"
        )
    if found is not None:
        said, way_out = f"its marker {MARKER} says {found}", DELETED
    elif stake := _what_is_at_stake(session, store):
        said, way_out = f"it has no marker {MARKER}, yet {stake}", DELETED
    else:  # only a worker gets here: the API claims an empty store again
        said, way_out = f"it has no marker {MARKER}", EMPTIED
    return StoreUnusable(
        f"{where} is not the one this database uses (PC_DATABASE_URL={database}): {said}; the "
        f"database's store is marked {recorded}. Every API process and worker must share one "
        f"store: point PC_MODELS_STORE at the folder the API uses (the one whose {MARKER} says "
        f"{recorded}). {way_out}"
    )


def _unreadable(store: Path, exc: OSError) -> StoreUnusable:
    return StoreUnusable(
        f"cannot use the models store at PC_MODELS_STORE={store}: {exc.strerror or exc}. The "
        f"service reads and writes its marker {MARKER} there: check the path, and that the "
        "folder is writable"
    )
