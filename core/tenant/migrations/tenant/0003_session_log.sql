-- Each session's log: what the run did, line by line (JSON array of strings), for the
-- console's session report and `cloudkeep job show`.
ALTER TABLE sessions ADD COLUMN log TEXT NOT NULL DEFAULT '[]';
