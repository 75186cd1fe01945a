-- One codebook store keyed by owner (issue 11). The codebook tables now hold every codebook of a wave,
-- keyed by `book`: '' for the wave's main file (the core study, prefix columns included), a subscriber id
-- for that subscriber's merged custom-question file. `variables.owner` keeps its meaning (the subscriber
-- whose question it is: a prefix column, or every variable of a subscriber's book; NULL for a core
-- question). The parallel custom_variables, custom_value_labels and custom_missing_values tables move
-- in here and are dropped. custom_merges (the merge record: file, sha256, language) and the answers
-- tables custom_<sub>_<wave> stay: they are not codebook.
-- The primary keys change, which DuckDB only allows by rebuilding the tables.
CREATE TABLE variables_new (
    wave INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    label VARCHAR,
    type VARCHAR NOT NULL,          -- 'numeric' | 'string' | 'date' | 'datetime'
    measure VARCHAR NOT NULL,       -- 'nominal' | 'ordinal' | 'scale' | 'unknown'
    format VARCHAR,
    width INTEGER,
    role VARCHAR,                   -- 'id' | 'jurisdiction' | 'weight' | NULL
    owner VARCHAR,                  -- the subscriber whose question it is (prefix column or custom file), else NULL
    question VARCHAR,               -- study-level question this variable answers
    book VARCHAR NOT NULL DEFAULT '', -- whose codebook: '' the wave's main file, else a subscriber's custom file
    PRIMARY KEY (book, wave, name)
);
INSERT INTO variables_new
    SELECT wave, name, position, label, type, measure, format, width, role, owner, question, ''
    FROM variables;
INSERT INTO variables_new
    SELECT wave, name, position, label, type, measure, format, width, NULL, subscriber, name, subscriber
    FROM custom_variables;
DROP TABLE variables;
ALTER TABLE variables_new RENAME TO variables;

CREATE TABLE value_labels_new (
    wave INTEGER NOT NULL,
    variable VARCHAR NOT NULL,
    code VARCHAR NOT NULL,          -- canonical text of the code: '1', '8', '1.5', 'ON'
    code_num DOUBLE,                -- the numeric code, NULL for string variables
    label VARCHAR NOT NULL,
    book VARCHAR NOT NULL DEFAULT '',
    PRIMARY KEY (book, wave, variable, code)
);
INSERT INTO value_labels_new SELECT wave, variable, code, code_num, label, '' FROM value_labels;
INSERT INTO value_labels_new SELECT wave, variable, code, code_num, label, subscriber FROM custom_value_labels;
DROP TABLE value_labels;
ALTER TABLE value_labels_new RENAME TO value_labels;

CREATE TABLE missing_values_new (
    wave INTEGER NOT NULL,
    variable VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,          -- 'value' | 'range'
    code VARCHAR,                   -- the code for kind='value'
    low DOUBLE,                     -- numeric bounds (low = high = code for a numeric value)
    high DOUBLE,
    book VARCHAR NOT NULL DEFAULT ''
);
INSERT INTO missing_values_new SELECT wave, variable, kind, code, low, high, '' FROM missing_values;
INSERT INTO missing_values_new SELECT wave, variable, kind, code, low, high, subscriber FROM custom_missing_values;
DROP TABLE missing_values;
ALTER TABLE missing_values_new RENAME TO missing_values;

CREATE TABLE mr_sets_new (
    wave INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    label VARCHAR,
    type VARCHAR NOT NULL,          -- 'dichotomy' | 'category'
    counted_value VARCHAR,
    variables VARCHAR[] NOT NULL,
    book VARCHAR NOT NULL DEFAULT '',
    PRIMARY KEY (book, wave, name)
);
INSERT INTO mr_sets_new SELECT wave, name, label, type, counted_value, variables, '' FROM mr_sets;
DROP TABLE mr_sets;
ALTER TABLE mr_sets_new RENAME TO mr_sets;

DROP TABLE custom_variables;
DROP TABLE custom_value_labels;
DROP TABLE custom_missing_values;
