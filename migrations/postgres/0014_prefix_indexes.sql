-- `startswith` filters on users, groups and applications are ranges on the lowercased column
-- (store `list.rs`): `lower(col) COLLATE "C" >= lower(prefix) AND lower(col) COLLATE "C" <
-- successor`. Under a locale's collation the values that begin with a prefix are not one range
-- (punctuation and accents are weighed apart from letters), so the range and these indexes
-- compare by code point ("C"). The indexes from 0001 stay: they serve `eq` filters and the
-- uniqueness of userPrincipalName in the database's own collation.
CREATE INDEX users_display_name_prefix ON users (lower(display_name) COLLATE "C");
CREATE INDEX users_upn_prefix ON users (lower(user_principal_name) COLLATE "C");
CREATE INDEX users_mail_prefix ON users (lower(mail) COLLATE "C");
CREATE INDEX groups_display_name_prefix ON groups (lower(display_name) COLLATE "C");
CREATE INDEX groups_mail_nickname_prefix ON groups (lower(mail_nickname) COLLATE "C");
CREATE INDEX applications_display_name_prefix ON applications (lower(display_name) COLLATE "C");
