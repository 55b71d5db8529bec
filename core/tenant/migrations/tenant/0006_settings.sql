-- This computer's own settings as text key/value pairs (issue 27: where notifications go).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
