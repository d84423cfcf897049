-- Whether a delivery still has files to deliver is asked after every file
-- settles (DeliveryFileAnyUnsettled); this index answers it without reading
-- the delivery's other rows, which made settling a package of n files cost
-- n^2 row reads.
-- +goose Up
CREATE INDEX delivery_files_delivery_state ON delivery_files (delivery_id, state);

-- +goose Down
DROP INDEX delivery_files_delivery_state;
