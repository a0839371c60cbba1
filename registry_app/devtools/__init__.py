"""Development tools that are real servers, used by the tests and by ``make demo`` (never in production)."""
