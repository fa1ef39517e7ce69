"""A small SQLAlchemy schema (authors and their books) and routes that query it, for
the SQL tests."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy import orm

if t.TYPE_CHECKING:
    from flask import Flask

    from flask_observe import RequestRecord


#: The lazy load of an author's books, as SQLAlchemy writes it (2.0 before 2.0.2x labels
#: each column ``AS book_id``...; later versions do not).
LAZY_BOOKS = (
    r"SELECT book\.id(?: AS book_id)?, book\.title(?: AS book_title)?, "
    r"book\.author_id(?: AS book_author_id)? FROM book WHERE \? = book\.author_id"
)


class Base(orm.DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    name: orm.Mapped[str]
    password: orm.Mapped[str] = orm.mapped_column(default="")
    books: orm.Mapped[list[Book]] = orm.relationship(back_populates="author")


class Book(Base):
    __tablename__ = "book"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    title: orm.Mapped[str]
    author_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("author.id"))
    author: orm.Mapped[Author] = orm.relationship(back_populates="books")


def fill(engine: sa.Engine, authors: int = 3) -> None:
    """Create the tables on *engine* and add *authors* authors with two books each."""
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session, session.begin():
        for number in range(authors):
            author = Author(name=f"author {number}", password=f"pw-{number}")
            author.books = [Book(title=f"book {number}.{n}") for n in range(2)]
            session.add(author)


def memory_engine(authors: int = 3) -> sa.Engine:
    """An in-memory SQLite engine (one connection shared by every thread) with the
    tables filled."""
    engine = sa.create_engine(
        "sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
    )
    fill(engine, authors)
    return engine


def add_library_routes(engine: sa.Engine) -> t.Callable[[Flask], None]:
    """Routes on *engine*: ``/authors`` (N+1: one query per author's books),
    ``/authors-joined`` (one query), ``/count`` (one statement) and ``/none`` (none)."""

    def add(app: Flask) -> None:
        @app.get("/authors")
        def authors() -> dict[str, int]:
            with orm.Session(engine) as session:
                found = session.scalars(sa.select(Author).order_by(Author.id)).all()
                return {author.name: len(author.books) for author in found}

        @app.get("/authors-joined")
        def authors_joined() -> dict[str, int]:
            with orm.Session(engine) as session:
                query = sa.select(Author).options(orm.selectinload(Author.books))
                found = session.scalars(query.order_by(Author.id)).all()
                return {author.name: len(author.books) for author in found}

        @app.get("/count")
        def count() -> dict[str, int]:
            with engine.connect() as connection:
                return {"books": connection.scalar(sa.select(sa.func.count(Book.id))) or 0}

        @app.get("/none")
        def none() -> str:
            return "no database"

    return add


def keep_records(app: Flask) -> list[RequestRecord]:
    """The records of *app*'s finished requests, appended as they finish."""
    from flask_observe.extension import get_state

    records: list[RequestRecord] = []
    get_state(app).add_finish_hook(records.append)
    return records
