-- Smart lockout grows the lock with each failure past the threshold, counted from the latest
-- failure: keep when that was.
ALTER TABLE failure_counters ADD COLUMN last_failure BIGINT;
