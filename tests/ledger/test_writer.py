import asyncio

import openai

from tests.conftest import three_tier_config
from tiergate.config.loader import parse_config
from tiergate.fakes import Reply
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer
from tiergate.ledger import DatabaseLedger, LedgerEntry, SubCall
from tiergate.ledger.rows import SELECT, from_row
from tiergate.store.db import Database, DatabaseURL
from tiergate.store.migrations import MIGRATIONS, migrate
from tiergate.store.testing import POSTGRES_URL


def _entry(i: int, **values: object) -> LedgerEntry:
    e = LedgerEntry(
        request_id=f"r{i}",
        ts=1_700_000_000.0 + i,
        key_name="team-a",
        route="auto",
        strategy="rules",
        reasons="rules: short -> budget",
        model="small-model",
        tier="budget",
        deployment="small-model@upstream",
        input_tokens=500,
        output_tokens=300,
        cost_usd=0.000145,
        baseline_cost_usd=0.0053,
        tags=["a", "b"],
    )
    for name, value in values.items():
        setattr(e, name, value)
    return e


def _read(url: DatabaseURL) -> list[LedgerEntry]:
    db = Database.connect(url)
    try:
        return [from_row(r) for r in db.query(SELECT + " ORDER BY ts")]
    finally:
        db.close()


async def test_close_flushes_every_entry_in_batches(db_url):
    ledger = DatabaseLedger(db_url, batch_size=7)
    await ledger.start()
    for i in range(100):
        ledger.record(_entry(i))
    await ledger.close()
    rows = _read(db_url)
    assert [e.request_id for e in rows] == [f"r{i}" for i in range(100)]
    assert rows[0] == _entry(0)
    assert ledger.written == 100 and ledger.dropped == 0


async def test_round_trip_keeps_sub_calls_and_odd_text(db_url):
    ledger = DatabaseLedger(db_url)
    await ledger.start()
    entry = _entry(1, key_name="o'brien; DROP TABLE x; --%_", error="boom \x00?", stream=True)
    entry.add_sub_call(SubCall("classifier", "small-model", 40, 1, 0.0000024))
    ledger.record(entry)
    await ledger.flush()
    (row,) = _read(db_url)
    assert row.key_name == "o'brien; DROP TABLE x; --%_"
    assert row.sub_calls == [SubCall("classifier", "small-model", 40, 1, 0.0000024)]
    assert row.total_cost_usd == entry.cost_usd + 0.0000024
    assert row.stream is True
    assert row.error == "boom \ufffd?"
    await ledger.close()


async def test_record_does_not_wait_for_a_locked_database(tmp_path):
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'locked.db'}")
    ledger = DatabaseLedger(url)
    await ledger.start()
    blocker = Database.connect(url)
    blocker.execute("BEGIN IMMEDIATE")  # the writer thread now waits for the lock
    ledger.record(_entry(-1))
    await asyncio.sleep(0.05)
    # The lock is held by this very thread: a record() that wrote synchronously would wait
    # out SQLite's busy timeout and fail. Returning at all proves it only queues.
    for i in range(2000):
        ledger.record(_entry(i))
    assert _read(url) == []
    blocker.execute("ROLLBACK")
    blocker.close()
    await ledger.close()
    assert len(_read(url)) == 2001


async def test_migrations_are_versioned_and_run_once(db_url):
    async def start_one() -> None:
        ledger = DatabaseLedger(db_url)
        await ledger.start()
        await ledger.close()

    await asyncio.gather(*(start_one() for _ in range(3)))
    db = Database.connect(db_url)
    try:
        versions = db.query("SELECT version FROM {p}migrations")
        assert versions == [(v,) for v, _, _ in MIGRATIONS]
        assert migrate(db) == MIGRATIONS[-1][0]
    finally:
        db.close()


async def test_sqlite_uses_wal(tmp_path):
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'x.db'}")
    ledger = DatabaseLedger(url)
    await ledger.start()
    await ledger.close()
    db = Database.connect(url)
    assert db.query("PRAGMA journal_mode") == [("wal",)]
    db.close()


def test_gateway_books_to_the_database_and_flushes_on_shutdown(fake, db_url):
    if db_url.dialect == "sqlite":
        ledger = f"ledger: {{url: 'sqlite:///{db_url.target}'}}\n"
    else:
        ledger = f"ledger: {{url: '{POSTGRES_URL}', table_prefix: {db_url.prefix}}}\n"
    gateway = Gateway.from_config(parse_config(three_tier_config(fake, ledger)))
    assert isinstance(gateway.ledger, DatabaseLedger)
    fake.enqueue(Reply("hi", input_tokens=500, output_tokens=300))
    with BackgroundServer(create_app(gateway)) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="tg-test-key", max_retries=0)
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    (row,) = _read(db_url)
    assert row.model == "small-model" and row.key_name == "test"
    assert row.cost_usd == (500 * 0.05 + 300 * 0.40) / 1e6
    assert row.baseline_cost_usd == (500 * 2.50 + 300 * 15.00) / 1e6
