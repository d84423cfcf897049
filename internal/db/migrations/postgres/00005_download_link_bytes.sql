-- Download links count bytes, not requests: for each file a link has served,
-- the bytes charged so far. A link allowing N downloads serves each file at
-- most N times its size in total, whatever ranges are asked for; a charge is
-- taken before the bytes go out and what was never sent is given back.
-- file_id is not a foreign key: the row dies with its link, and a package's
-- files are deleted in the same transaction as its links.
-- +goose Up
CREATE TABLE download_link_files (
    link_id      TEXT NOT NULL REFERENCES download_links (id) ON DELETE CASCADE,
    file_id      TEXT NOT NULL,
    bytes_served BIGINT NOT NULL DEFAULT 0 CHECK (bytes_served >= 0),
    -- bytes given back because a connection broke while they were in flight
    -- (capped per file: see DownloadLinkFileRefund)
    lost_forgiven BIGINT NOT NULL DEFAULT 0 CHECK (lost_forgiven >= 0),
    PRIMARY KEY (link_id, file_id)
);

-- +goose Down
DROP TABLE download_link_files;
