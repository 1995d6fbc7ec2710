ALTER TABLE signing_keys DROP COLUMN unpublishes_at;
