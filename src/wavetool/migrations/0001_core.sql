-- Waves, the files they came from, and the codebook of every variable, kept as data.
CREATE TABLE waves (
    wave INTEGER PRIMARY KEY,
    table_name VARCHAR NOT NULL,
    id_column VARCHAR NOT NULL,
    jurisdiction_column VARCHAR NOT NULL,
    weight_column VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    columns INTEGER NOT NULL,
    encoding VARCHAR,
    reader VARCHAR NOT NULL,
    content_sha256 VARCHAR NOT NULL,
    imported_at TIMESTAMP NOT NULL,
    wavetool_version VARCHAR NOT NULL,
    review_status VARCHAR NOT NULL DEFAULT 'approved',
    drift JSON,
    reviewed_at TIMESTAMP
);
CREATE TABLE wave_files (
    wave INTEGER NOT NULL,
    position INTEGER NOT NULL,
    file_name VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    columns INTEGER NOT NULL,
    PRIMARY KEY (wave, position)
);
CREATE TABLE variables (
    wave INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    label VARCHAR,
    type VARCHAR NOT NULL,          -- 'numeric' | 'string' | 'date' | 'datetime'
    measure VARCHAR NOT NULL,       -- 'nominal' | 'ordinal' | 'scale' | 'unknown'
    format VARCHAR,
    width INTEGER,
    role VARCHAR,                   -- 'id' | 'jurisdiction' | 'weight' | NULL
    owner VARCHAR,                  -- subscriber id for custom columns in the main file, else NULL
    question VARCHAR,               -- study-level question this variable answers
    PRIMARY KEY (wave, name)
);
CREATE TABLE value_labels (
    wave INTEGER NOT NULL,
    variable VARCHAR NOT NULL,
    code VARCHAR NOT NULL,          -- canonical text of the code: '1', '8', '1.5', 'ON'
    code_num DOUBLE,                -- the numeric code, NULL for string variables
    label VARCHAR NOT NULL,
    PRIMARY KEY (wave, variable, code)
);
CREATE TABLE missing_values (
    wave INTEGER NOT NULL,
    variable VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,          -- 'value' | 'range'
    code VARCHAR,                   -- the code for kind='value'
    low DOUBLE,                     -- numeric bounds (low = high = code for a numeric value)
    high DOUBLE
);
CREATE TABLE mr_sets (
    wave INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    label VARCHAR,
    type VARCHAR NOT NULL,          -- 'dichotomy' | 'category'
    counted_value VARCHAR,
    variables VARCHAR[] NOT NULL,
    PRIMARY KEY (wave, name)
);
