"""The database toolkit: ORM base and types, the engine, sessions, and the call-control hot
path's own connections (asyncpg on PostgreSQL), prepared statements and batching."""
