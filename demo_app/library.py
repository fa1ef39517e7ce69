"""The demo's library: a small SQLAlchemy model (authors and their books) on SQLite in
memory, with an N+1 page to show the SQL panel, and the same page fixed.

``/library/authors`` loads the authors, then each author's books lazily: one statement
for the list plus one per author, flagged as N+1 in the SQL panel.
``/library/authors-fixed`` loads the books with ``selectinload``: two statements.
Registered by :func:`init_library` (one call in the app factory); each app gets its own
database, kept in ``app.extensions``.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint
from flask import current_app
from flask import Flask
from flask import render_template_string
from sqlalchemy import orm

library = Blueprint("library", __name__)

#: Key of the app's engine in ``app.extensions``.
EXTENSION_KEY = "demo_library"

AUTHORS = {
    "Ursula K. Le Guin": ["A Wizard of Earthsea", "The Dispossessed", "The Lathe of Heaven"],
    "Stanisław Lem": ["Solaris", "The Cyberiad"],
    "Octavia E. Butler": ["Kindred", "Parable of the Sower"],
    "Italo Calvino": ["Invisible Cities", "If on a winter's night a traveler"],
    "Tove Jansson": ["The Summer Book"],
}

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body>
  <h1>{{ title }}</h1>
  <p>{{ note }}</p>
  <ul>
    {% for author in authors -%}
    <li>{{ author.name }}: {{ author.books|map(attribute="title")|join(", ") }}</li>
    {% endfor %}
  </ul>
  <p><a href="/library/authors">N+1 page</a> &middot;
    <a href="/library/authors-fixed">fixed page</a></p>
</body>
</html>
"""


class Base(orm.DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    name: orm.Mapped[str]
    books: orm.Mapped[list[Book]] = orm.relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "book"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    title: orm.Mapped[str]
    author_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("author.id"))
    author: orm.Mapped[Author] = orm.relationship(back_populates="books")


def init_library(app: Flask) -> None:
    """Give *app* its own in-memory library database and the library pages."""
    engine = sa.create_engine(
        "sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
    )
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session, session.begin():
        for name, titles in AUTHORS.items():
            session.add(Author(name=name, books=[Book(title=title) for title in titles]))
    app.extensions[EXTENSION_KEY] = engine
    app.register_blueprint(library, url_prefix="/library")


def _session() -> orm.Session:
    return orm.Session(current_app.extensions[EXTENSION_KEY])


@library.get("/authors")
def authors() -> str:
    """N+1: the list, then each author's books, one statement per author."""
    with _session() as session:
        found = session.scalars(sa.select(Author).order_by(Author.id)).all()
        return render_template_string(
            PAGE,
            title="Authors (N+1)",
            note="One statement for the authors, then one per author for the books.",
            authors=found,
        )


@library.get("/authors-fixed")
def authors_fixed() -> str:
    """The same page in two statements: the books loaded with ``selectinload``."""
    with _session() as session:
        query = sa.select(Author).options(orm.selectinload(Author.books)).order_by(Author.id)
        return render_template_string(
            PAGE,
            title="Authors (fixed)",
            note="Two statements: the authors, then all their books at once.",
            authors=session.scalars(query).all(),
        )
