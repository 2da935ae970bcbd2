"""callcenter: joins an Asterisk call center to PostgreSQL, Prometheus, tickets and agents."""

__version__ = "0.1.0"
