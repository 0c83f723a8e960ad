-- `startswith` filters on users, groups and applications are ranges on the lowercased column
-- (store `list.rs`): `lower(col) >= lower(prefix) AND lower(col) < successor`. SQLite compares
-- text bytewise (code-point order), so the indexes on lower(display_name), lower(mail) and
-- lower(user_principal_name) made in 0001 already serve them; a group's mailNickname had none.
CREATE INDEX groups_mail_nickname_lower ON groups (lower(mail_nickname));
