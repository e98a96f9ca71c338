"""The MoneyTracker HTTP API (FastAPI). Amounts are integer cents."""

import datetime as dt
import logging
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import BigInteger, cast, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from moneytracker.csrf import CsrfMiddleware, CsrfSigner
from moneytracker.db import accounts, database_path, make_engine, transactions
from moneytracker.settings import Settings, load_settings

log = logging.getLogger("moneytracker")

MAX_AMOUNT_CENTS = 10**13  # 100 billion: keeps every sum far inside 64-bit integers (SQLite, BIGINT)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Category = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=40)]
Amount = Annotated[int, Field(strict=True, ge=-MAX_AMOUNT_CENTS, le=MAX_AMOUNT_CENTS)]


def cents(total):
    """A sum of cents as an integer on every engine (PostgreSQL's SUM of BIGINT is NUMERIC)."""
    return cast(func.coalesce(total, 0), BigInteger)


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class TransactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: Annotated[int, Field(strict=True, ge=1)]
    amount_cents: Amount
    description: Description = ""
    occurred_on: dt.date

    @field_validator("amount_cents")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("amount_cents must not be zero")
        return value


class TransactionInV2(TransactionIn):
    category: Category | None = None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    release = settings.release
    engine = make_engine(settings.database_url)
    db_file = database_path(settings.database_url)
    signer = CsrfSigner(settings.secret_key)
    tx_columns = [
        transactions.c.id, transactions.c.account_id, transactions.c.amount_cents,
        transactions.c.description, transactions.c.occurred_on,
    ]
    if release.categories:
        tx_columns.append(transactions.c.category)

    app = FastAPI(
        title="MoneyTracker",
        version=release.version,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(CsrfMiddleware, signer=signer)

    def row_dict(row) -> dict:
        data = dict(row._mapping)
        if "occurred_on" in data:
            data["occurred_on"] = data["occurred_on"].isoformat()
        if "created_at" in data and data["created_at"] is not None:
            data["created_at"] = data["created_at"].isoformat()
        return data

    def schema_revision(conn) -> str | None:
        # The engine's own catalogue (sqlite_master, or pg_catalog for the connection's schema).
        tables = set(inspect(conn).get_table_names()) & {"alembic_version", "accounts", "transactions"}
        missing = {"accounts", "transactions"} - tables
        if "alembic_version" not in tables:
            return None
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if missing and revision:
            raise LookupError(f"schema {revision} is damaged: missing table(s) {', '.join(sorted(missing))}")
        return revision

    # ---- health -------------------------------------------------------------------------------
    @app.get("/health/live", tags=["health"])
    def live() -> dict:
        """The process answers: no I/O at all."""
        return {"status": "alive"}

    @app.get("/health/ready", tags=["health"])
    def ready() -> JSONResponse:
        """The database answers and its schema is exactly this release's head."""
        def unavailable(reason: str) -> JSONResponse:
            return JSONResponse(
                {"status": "unavailable", "reason": reason, "release": release.version, "head": release.head},
                status_code=503,
            )

        if release.never_ready:
            return unavailable(f"release {release.version} is a test double that is never ready")
        if db_file is not None and not db_file.exists():
            return unavailable(f"database file {db_file} does not exist: run moneytracker-migrate upgrade")
        try:
            with engine.connect() as conn:
                revision = schema_revision(conn)
        except LookupError as exc:
            return unavailable(str(exc))
        except SQLAlchemyError as exc:
            return unavailable(f"database error: {type(exc.orig or exc).__name__}: {exc.orig or exc}")
        if revision != release.head:
            return unavailable(
                f"schema revision is {revision or 'none'}, release {release.version} needs {release.head}: "
                "run moneytracker-migrate upgrade"
            )
        return JSONResponse({"status": "ready", "release": release.version, "schema": revision})

    # ---- meta ---------------------------------------------------------------------------------
    @app.get("/api/version")
    def version() -> dict:
        try:
            with engine.connect() as conn:
                schema = schema_revision(conn)
        except (LookupError, SQLAlchemyError):
            schema = None
        features = ["categories"] if release.categories else []
        return {"release": release.version, "schema": schema, "head": release.head, "features": features}

    @app.get("/api/csrf")
    def csrf(response: Response) -> dict:
        response.headers["Cache-Control"] = "no-store"
        return {"token": signer.issue(), "header": "X-CSRF-Token"}

    # ---- accounts -----------------------------------------------------------------------------
    @app.get("/api/accounts")
    def list_accounts() -> list[dict]:
        with engine.connect() as conn:
            rows = conn.execute(select(accounts.c.id, accounts.c.name, accounts.c.created_at).order_by(accounts.c.name))
            return [row_dict(r) for r in rows]

    @app.post("/api/accounts", status_code=201)
    def create_account(payload: AccountIn) -> dict:
        try:
            with engine.begin() as conn:
                row = conn.execute(
                    insert(accounts).values(name=payload.name)
                    .returning(accounts.c.id, accounts.c.name, accounts.c.created_at)
                ).one()
        except IntegrityError:
            raise HTTPException(409, f"an account named {payload.name!r} already exists") from None
        return row_dict(row)

    @app.get("/api/accounts/{account_id}/balance")
    def balance(account_id: int) -> dict:
        with engine.connect() as conn:
            if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
                raise HTTPException(404, f"account {account_id} does not exist")
            total, count = conn.execute(
                select(cents(func.sum(transactions.c.amount_cents)), func.count(transactions.c.id))
                .where(transactions.c.account_id == account_id)
            ).one()
        return {"account_id": account_id, "balance_cents": total, "transactions": count}

    # ---- transactions -------------------------------------------------------------------------
    # No "from __future__ import annotations" in this module: FastAPI must see this class itself.
    TxIn = TransactionInV2 if release.categories else TransactionIn

    @app.get("/api/transactions")
    def list_transactions(
        account_id: int | None = None,
        category: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict]:
        query = select(*tx_columns).order_by(transactions.c.occurred_on.desc(), transactions.c.id.desc())
        if account_id is not None:
            query = query.where(transactions.c.account_id == account_id)
        if category is not None:
            if not release.categories:
                raise HTTPException(400, f"release {release.version} has no categories")
            query = query.where(transactions.c.category == category.strip().lower())
        with engine.connect() as conn:
            return [row_dict(r) for r in conn.execute(query.limit(limit).offset(offset))]

    @app.post("/api/transactions", status_code=201)
    def create_transaction(payload: TxIn) -> dict:
        values = payload.model_dump()
        if values.get("category") == "":
            values["category"] = None
        try:
            with engine.begin() as conn:
                row = conn.execute(insert(transactions).values(**values).returning(*tx_columns)).one()
        except IntegrityError:  # foreign_keys=ON: the account must exist
            raise HTTPException(422, f"account {payload.account_id} does not exist") from None
        return row_dict(row)

    # ---- reports ------------------------------------------------------------------------------
    @app.get("/api/summary")
    def summary() -> dict:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    accounts.c.id, accounts.c.name,
                    cents(func.sum(transactions.c.amount_cents)).label("balance_cents"),
                    func.count(transactions.c.id).label("transactions"),
                )
                .select_from(accounts.outerjoin(transactions, transactions.c.account_id == accounts.c.id))
                .group_by(accounts.c.id)
                .order_by(accounts.c.name)
            ).all()
            result = {
                "accounts": [row_dict(r) for r in rows],
                "total_cents": sum(r.balance_cents for r in rows),
            }
            if release.categories:
                result["categories"] = [
                    row_dict(r) for r in conn.execute(
                        select(
                            transactions.c.category,
                            cents(func.sum(transactions.c.amount_cents)).label("total_cents"),
                            func.count(transactions.c.id).label("transactions"),
                        )
                        .group_by(transactions.c.category)
                        .order_by(transactions.c.category)
                    )
                ]
        return result

    return app


app = create_app()
