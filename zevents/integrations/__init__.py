"""zevents in the frameworks Python services are built with.

``zevents.integrations.sqlalchemy``: model change events from SQLAlchemy's ORM (extra
``zevents[sqlalchemy]``).
"""
