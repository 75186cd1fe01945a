-- Raked weights (issue 4). `wavetool weight --wave N` adds `_weight_vendor` (the delivered weight, kept)
-- and `_weight_raked` to the wave table and sets `_weight` (what every table reads) to the raked weight;
-- one row here per raked wave records how. The wave's weight is "raked" while its table has `_weight_raked`.
CREATE TABLE weightings (
    wave INTEGER PRIMARY KEY,
    base VARCHAR NOT NULL,              -- 'vendor' | 'uniform': the weights raking started from
    margins JSON NOT NULL,              -- the [weighting.margins] raked to
    iterations INTEGER NOT NULL,
    converged BOOLEAN NOT NULL,
    max_margin_error DOUBLE NOT NULL,
    efficiency DOUBLE NOT NULL,         -- Kish weighting efficiency, percent
    design_effect DOUBLE NOT NULL,      -- Kish design effect due to weighting
    min_weight DOUBLE NOT NULL,
    max_weight DOUBLE NOT NULL,
    trim JSON,                          -- [low, high] or null
    trimmed INTEGER NOT NULL,           -- respondents whose weight sits on a trim bound
    content_sha256 VARCHAR NOT NULL,    -- the wave's content when it was raked
    raked_at TIMESTAMP NOT NULL
);
