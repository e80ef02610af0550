-- 0005: the credential generation (sesame.User.CredentialGen), advanced
-- with every password change and every end of all a user's sessions, so a
-- login in flight can tell that what it verified no longer counts.
ALTER TABLE users ADD COLUMN credential_gen bigint NOT NULL DEFAULT 0;
