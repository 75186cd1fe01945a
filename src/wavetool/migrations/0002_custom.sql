-- Subscribers' custom questions (issue 3). Each merged file lives in its own wide table, one per
-- (subscriber, wave), named custom_<subscriber with - as _>_<wave>: `_id` plus one column per custom
-- question under its own name, so two subscribers may both have a C1. Its codebook is kept beside it.
CREATE TABLE custom_merges (
    subscriber VARCHAR NOT NULL,
    wave INTEGER NOT NULL,
    table_name VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    content_sha256 VARCHAR NOT NULL, -- file + codebook + encoding; '' once questions were removed
    codebook_path VARCHAR,
    rows BIGINT NOT NULL,
    language VARCHAR NOT NULL,       -- the language of the file's labels (the subscriber's)
    reader VARCHAR NOT NULL,
    merged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subscriber, wave)
);
CREATE TABLE custom_variables (
    subscriber VARCHAR NOT NULL,
    wave INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    label VARCHAR,
    type VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    format VARCHAR,
    width INTEGER,
    PRIMARY KEY (subscriber, wave, name)
);
CREATE TABLE custom_value_labels (
    subscriber VARCHAR NOT NULL,
    wave INTEGER NOT NULL,
    variable VARCHAR NOT NULL,
    code VARCHAR NOT NULL,
    code_num DOUBLE,
    label VARCHAR NOT NULL,
    PRIMARY KEY (subscriber, wave, variable, code)
);
CREATE TABLE custom_missing_values (
    subscriber VARCHAR NOT NULL,
    wave INTEGER NOT NULL,
    variable VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    code VARCHAR,
    low DOUBLE,
    high DOUBLE
);
