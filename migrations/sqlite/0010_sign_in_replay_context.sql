-- What Conditional Access decided each sign-in on (a small CBOR document, see
-- portcullis_core::logs::replay_context), so a candidate policy set can be replayed against the
-- log. NULL for entries logged before it was kept and for attempts that never reached
-- Conditional Access: replay counts those as skipped.
ALTER TABLE sign_ins ADD COLUMN replay_context BLOB;
