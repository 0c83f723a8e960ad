-- `startswith` filters on users, groups and applications are ranges on the lowercased column
-- (store `list.rs`): `lower(col) >= lower(prefix) AND lower(col) < successor`, compared by code
-- point, which keeps together the values that begin with a prefix (a locale's collation does
-- not: it weighs punctuation and accents apart from letters). These indexes compare the same
-- way, so both databases read the range from them; they replace 0001's indexes on the same
-- expressions, which PostgreSQL kept in the database's own collation. The unique index on
-- lower(user_principal_name) stays: it holds the names unique and serves sign-in lookups.
CREATE INDEX users_display_name_prefix ON users (lower(display_name) COLLATE BINARY);
DROP INDEX users_display_name_lower;
CREATE INDEX users_mail_prefix ON users (lower(mail) COLLATE BINARY);
DROP INDEX users_mail_lower;
CREATE INDEX users_upn_prefix ON users (lower(user_principal_name) COLLATE BINARY);
CREATE INDEX groups_display_name_prefix ON groups (lower(display_name) COLLATE BINARY);
DROP INDEX groups_display_name_lower;
CREATE INDEX groups_mail_nickname_prefix ON groups (lower(mail_nickname) COLLATE BINARY);
CREATE INDEX applications_display_name_prefix ON applications (lower(display_name) COLLATE BINARY);
DROP INDEX applications_display_name_lower;
