-- Runs of `wavetool run` (issue 6): one row per run, with its manifest (inputs' sha256 → tables →
-- report sha256 → deliveries). The delivery log itself is a separate SQLite file (wavetool-delivery.sqlite)
-- so that sending never needs this database's lock.
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    wave INTEGER NOT NULL,
    final BOOLEAN NOT NULL,
    send BOOLEAN NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL,        -- 'running' | 'ok' | 'partial' | 'failed' | 'interrupted'
    exit_code INTEGER,
    error VARCHAR,
    pid INTEGER NOT NULL,
    wavetool_version VARCHAR NOT NULL,
    summary JSON,                   -- what the run did: imported, merged, tables, rendered, sent, skipped, failed
    manifest JSON                   -- inputs' sha256 → tables → report sha256 → deliveries
);
