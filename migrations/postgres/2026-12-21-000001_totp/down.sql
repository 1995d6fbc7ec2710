ALTER TABLE sessions DROP COLUMN amr;
DROP TABLE totp_recovery_codes;
DROP TABLE totp_factors;
