"""The catalogue of patients, studies, series and instances (SQLAlchemy 2 async).

An index call takes one of three data paths; which one is decided by what it does:

1. ORM sessions (`repository`, `commitments`): the rare and administrative calls
   (a patient's studies, Storage Commitment transactions, counts), one
   `AsyncSession` and one transaction per call, on either engine.
2. The writer's Core statements (`transactions`, `upsert`, `upsert_sql`): every
   batch of stored instances, as prebuilt SQLAlchemy Core statements on a
   synchronous Connection, a handful per batch however many instances it holds.
   On SQLite they run in the one writer thread straight on its sqlite3 connection
   (`statements`, an `executemany` for many rows); on PostgreSQL through `run_sync`
   on an async engine of the writes' own, straight on its asyncpg connection
   (`asyncpg_direct`).
3. The hot reads (`reads`, `statements`, `find`, `locate`): C-FIND pages and
   retrieve's instance lists. On SQLite they run in reader threads straight on
   sqlite3 connections, with statements compiled once; on PostgreSQL as Core
   statements on the async engine.

The threads of paths 2 and 3 are listed with every other thread in the thread map
(`pacs.threads`).
"""
