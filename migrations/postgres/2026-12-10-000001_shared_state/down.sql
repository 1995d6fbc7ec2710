DROP TABLE shared_rate_limits;
DROP TABLE shared_state;
